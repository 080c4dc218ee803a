"""``instrument("openai")``: every call of the openai client's chat completions, completions, embeddings
and Responses APIs, sync and async, recorded as an LLM span.

The class methods are patched (``Completions.create`` and its siblings), so every client, made before or
after instrumenting, is covered; the SDK's stream helpers (``.stream(...)``) call ``create`` and are
recorded through it. Requests and responses are read by the same parsers as ``@observe``.
``stream_usage=True`` adds ``stream_options={"include_usage": True}`` to streaming chat and completion
requests that did not set it, so streams report their tokens.
"""

from __future__ import annotations

import importlib
from typing import Any

from llmpulse.agent.sdk.calls import call_options, run_call, run_call_async

from .patching import patch, unpatch

LIBRARY = "openai"
# (module, sync class, async class, operation, span name)
TARGETS = (
    ("openai.resources.chat.completions", "Completions", "AsyncCompletions", "chat", "openai.chat.completions"),
    ("openai.resources.completions", "Completions", "AsyncCompletions", "text_completion", "openai.completions"),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "embeddings", "openai.embeddings"),
    ("openai.resources.responses", "Responses", "AsyncResponses", "chat", "openai.responses"),
)
_STREAM_USAGE_OPERATIONS = ("chat", "text_completion")


def _with_stream_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("stream") is True and "stream_options" not in kwargs:
        return {**kwargs, "stream_options": {"include_usage": True}}
    return kwargs


def instrument(*, stream_usage: bool = False, **_options: Any) -> None:
    for module_name, sync_name, async_name, operation, span_name in TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an older openai without this API
            continue
        options = call_options(f"{span_name}.create", provider="openai", operation=operation)
        add_usage = stream_usage and operation in _STREAM_USAGE_OPERATIONS

        def sync_wrapper(original: Any, options: Any = options, add_usage: bool = add_usage) -> Any:
            def create(self: Any, *args: Any, **kwargs: Any) -> Any:
                if add_usage:
                    kwargs = _with_stream_usage(kwargs)
                return run_call(options, kwargs, original, self, *args)

            return create

        def async_wrapper(original: Any, options: Any = options, add_usage: bool = add_usage) -> Any:
            async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
                if add_usage:
                    kwargs = _with_stream_usage(kwargs)
                return await run_call_async(options, kwargs, original, self, *args)

            return create

        for class_name, make in ((sync_name, sync_wrapper), (async_name, async_wrapper)):
            owner = getattr(module, class_name, None)
            if owner is not None:
                patch(LIBRARY, owner, "create", make)


def uninstrument() -> None:
    unpatch(LIBRARY)
