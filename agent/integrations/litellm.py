"""``instrument("litellm")``: every ``litellm.completion`` / ``litellm.acompletion`` call as one LLM span.

litellm answers in OpenAI's shapes (``ModelResponse``, ``chat.completion.chunk`` stream chunks), so the
span is read by the same parsers as an OpenAI call; a ``stream=True`` call returns litellm's stream wrapped
so that the span ends with it, with the output and usage seen so far. The provider comes from litellm's
own routing (``get_llm_provider``: the model prefix, ``custom_llm_provider``, ``api_base``), named as the
OTel GenAI conventions do (``gcp.vertex_ai``, ``aws.bedrock``...), and the model is recorded without
litellm's provider prefix (``anthropic/claude-...`` -> ``claude-...``). When litellm calls a provider
through the openai (or anthropic) client and that client is instrumented too, the client call is folded
into this span: one call, one span.

The functions are patched on the ``litellm`` module: code that did ``from litellm import completion``
before ``instrument()`` holds the unpatched function (call ``litellm.completion``, or instrument first).
``stream_usage=True`` asks streams for their usage (``stream_options={"include_usage": True}``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.sdk.calls import (
    call_in_span,
    call_in_span_async,
    call_options,
    finish_call,
    fold_result,
    start_call,
)
from llmpulse.agent.sdk.streams import ObservedAsyncIterator, ObservedIterator

from .openai import with_stream_usage
from .patching import patch, unpatch

LIBRARY = "litellm"
OPTIONS = call_options("litellm.completion", provider=None, operation="chat")
# litellm's provider names -> gen_ai.provider.name (OTel GenAI semantic conventions); others are kept as litellm says.
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}
_ROUTES_MAX = 1024
_routes: dict[tuple[Any, Any, Any], tuple[Any, str | None]] = {}


def _route(litellm: Any, model: Any, provider: Any, api_base: Any) -> tuple[Any, str | None]:
    """(model without litellm's provider prefix, GenAI provider name), remembered per routing input."""
    key = (model, provider, api_base)
    found = _routes.get(key)
    if found is None:
        try:
            bare, name, _, _ = litellm.get_llm_provider(model=model, custom_llm_provider=provider, api_base=api_base)
        except Exception:  # litellm cannot route it either: the call itself will say so
            bare, name = model, provider
        found = (bare or model, PROVIDERS.get(name, name) if isinstance(name, str) else None)
        if len(_routes) < _ROUTES_MAX:
            _routes[key] = found
    return found


def _request(
    litellm: Any, positional: tuple[str, ...], args: tuple, kwargs: dict[str, Any]
) -> tuple[dict, dict | None]:
    """The span's request (positional arguments named, the model unprefixed) and its provider field."""
    request = dict(zip(positional, args, strict=False)) if args else {}
    request.update(kwargs)
    model, provider = _route(litellm, request.get("model"), request.get("custom_llm_provider"), request.get("api_base"))
    if model is not None:
        request["model"] = model
    return request, ({"provider": provider} if provider else None)


def _positional(function: Any) -> tuple[str, ...]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ("model", "messages")
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in kinds)


def _start(litellm: Any, positional: tuple[str, ...], args: tuple, kwargs: dict[str, Any]) -> Any:
    try:
        request, extra = _request(litellm, positional, args, kwargs)
    except Exception:
        logger.warning("llmpulse: could not read a litellm call; it runs uninstrumented", exc_info=True)
        return None
    return start_call(OPTIONS, request, extra=extra)


def _is_stream(result: Any) -> bool:
    return type(result).__name__ == "CustomStreamWrapper"


LOCAL_PRICE_MAP = "LITELLM_LOCAL_MODEL_COST_MAP"
"""Unless the app chose otherwise, litellm reads its bundled price map instead of fetching one over the
network when it is imported: instrumenting must never reach the network at start-up."""


def instrument(*, stream_usage: bool = False, **_options: Any) -> None:
    os.environ.setdefault(LOCAL_PRICE_MAP, "True")
    litellm = importlib.import_module("litellm")

    def sync_wrapper(original: Any) -> Any:
        positional = _positional(original)

        def completion(*args: Any, **kwargs: Any) -> Any:
            if stream_usage:
                kwargs = with_stream_usage(kwargs)
            record = _start(litellm, positional, args, kwargs)
            if record is None:
                result = original(*args, **kwargs)
                fold_result(OPTIONS, result)
                return result
            result = call_in_span(record, original, *args, **kwargs)
            if _is_stream(result):
                return ObservedIterator(result, record)
            return finish_call(record, result)

        return completion

    def async_wrapper(original: Any) -> Any:
        positional = _positional(original)

        async def acompletion(*args: Any, **kwargs: Any) -> Any:
            if stream_usage:
                kwargs = with_stream_usage(kwargs)
            record = _start(litellm, positional, args, kwargs)
            if record is None:
                result = await original(*args, **kwargs)
                fold_result(OPTIONS, result)
                return result
            result = await call_in_span_async(record, original, *args, **kwargs)
            if _is_stream(result):
                return ObservedAsyncIterator(result, record)
            return finish_call(record, result)

        return acompletion

    patch(LIBRARY, litellm, "completion", sync_wrapper)
    patch(LIBRARY, litellm, "acompletion", async_wrapper)


def uninstrument() -> None:
    unpatch(LIBRARY)
