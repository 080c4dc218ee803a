"""LlamaIndex objects in the shapes the SDK's parsers read: pure functions, no state.

An LLM span's request becomes OpenAI chat (or completion) keyword arguments and its response an
OpenAI chat-completion dict, so ``agent.enrich.providers`` reads model, parameters, messages, tokens and
cost the same way as for a client call. Usage comes from the provider's raw response (``response.raw``:
OpenAI or Anthropic shapes) or from LlamaIndex's token counts in ``additional_kwargs``; a response that
carries neither gets no usage at all, so its tokens stay NULL rather than a made-up 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmpulse.agent.enrich.providers import guess_provider

# LLM fields and call keyword arguments recorded as request parameters (the names the request parser reads).
PARAMETERS = ("temperature", "max_tokens", "top_p", "top_k", "frequency_penalty", "presence_penalty", "seed", "stop")
# ``llama_index.llms.<package>`` -> the semconv provider name.
PROVIDERS = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "gemini": "gcp.gemini",
    "google_genai": "gcp.gen_ai",
    "vertex": "gcp.vertex_ai",
    "mistralai": "mistral_ai",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "xai": "x_ai",
}
UNKNOWN_PROVIDER = "llamaindex"
"""The provider of an LLM that names none (``MockLLM``, an app's ``CustomLLM``): not ``openai`` by default."""
_LLMS_PACKAGE = "llama_index.llms."
_NO_MODEL = "unknown"  # LLMMetadata's default model_name: the LLM names none


def field(obj: Any, key: str) -> Any:
    """``obj[key]`` of a mapping or ``obj.key`` of an object; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def argument(bound_args: Any, *names: str) -> Any:
    """The first of ``names`` among a dispatcher span's bound arguments, else its first argument."""
    arguments = getattr(bound_args, "arguments", None) or {}
    for name in names:
        if name in arguments:
            return arguments[name]
    for value in arguments.values():
        return value
    return None


def query_text(value: Any) -> Any:
    """A query string, or a ``QueryBundle``'s ``query_str``."""
    if value is None or isinstance(value, str):
        return value
    text = getattr(value, "query_str", None)
    return text if isinstance(text, str) else str(value)


def node_text(node: Any) -> str:
    """The text of a retrieved node as the LLM is given it (``NodeWithScore`` or a bare node)."""
    inner = getattr(node, "node", node)
    get_content = getattr(inner, "get_content", None)
    if get_content is None:
        return str(inner)
    try:
        from llama_index.core.schema import MetadataMode

        return str(get_content(metadata_mode=MetadataMode.LLM))
    except Exception:
        return str(get_content())


def node_texts(nodes: Any) -> list[str]:
    if not isinstance(nodes, (list, tuple)):
        return []
    return [node_text(node) for node in nodes]


def retrieved(nodes: Any) -> list[dict[str, Any]]:
    """A retriever's result as the span's output: id, score and text of each node."""
    if not isinstance(nodes, (list, tuple)):
        return []
    out = []
    for node in nodes:
        inner = getattr(node, "node", node)
        item: dict[str, Any] = {"id": getattr(inner, "node_id", None), "text": node_text(node)}
        score = getattr(node, "score", None)
        if isinstance(score, (int, float)):
            item["score"] = float(score)
        out.append(item)
    return out


def response_text(result: Any) -> Any:
    """A query engine's or synthesizer's response as the span's output: its text (or structured output).

    Never ``str()`` of an unknown object: a streaming response's ``__str__`` would read the app's stream.
    """
    if isinstance(result, str):
        return result
    value = getattr(result, "response", None)
    if value is None:
        value = getattr(result, "response_txt", None)  # a streaming response read already
    if value is None or isinstance(value, str):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else None


def model_name(llm: Any) -> str | None:
    """The LLM's model: its ``model`` field, else ``metadata.model_name``."""
    model = getattr(llm, "model", None)
    if isinstance(model, str) and model:
        return model
    try:
        model = llm.metadata.model_name
    except Exception:
        return None
    return model if isinstance(model, str) and model and model != _NO_MODEL else None


def provider_name(llm: Any, model: str | None) -> str:
    """The provider from the LLM's integration package (``llama_index.llms.anthropic``), else the model name."""
    module = type(llm).__module__ or ""
    if module.startswith(_LLMS_PACKAGE):
        package = module[len(_LLMS_PACKAGE) :].partition(".")[0]
        return PROVIDERS.get(package, package)
    return guess_provider(model) or UNKNOWN_PROVIDER


def _role(message: Any) -> str:
    role = getattr(message, "role", "user")
    return str(getattr(role, "value", role))


def chat_message(message: Any) -> dict[str, Any]:
    """A LlamaIndex ``ChatMessage`` as an OpenAI chat message (text content; tool call ids kept)."""
    out: dict[str, Any] = {"role": _role(message), "content": getattr(message, "content", None) or ""}
    extra = getattr(message, "additional_kwargs", None) or {}
    if out["role"] == "tool" and extra.get("tool_call_id"):
        out["tool_call_id"] = extra["tool_call_id"]
    return out


def llm_request(operation: str, llm: Any, bound_args: Any, stream: bool) -> dict[str, Any]:
    """An LLM call's request as OpenAI keyword arguments: model, messages (chat) or prompt, parameters."""
    kwargs: dict[str, Any] = {}
    model = model_name(llm)
    if model is not None:
        kwargs["model"] = model
    if operation == "chat":
        messages = argument(bound_args, "messages")
        kwargs["messages"] = [chat_message(m) for m in messages] if isinstance(messages, (list, tuple)) else []
    else:
        prompt = argument(bound_args, "prompt")
        kwargs["prompt"] = prompt if isinstance(prompt, str) else str(prompt)
    call_kwargs = (getattr(bound_args, "arguments", None) or {}).get("kwargs") or {}
    for key in PARAMETERS:
        value = call_kwargs.get(key) if key in call_kwargs else getattr(llm, key, None)
        if value is not None and isinstance(value, (int, float, str, list, tuple)) and not isinstance(value, bool):
            kwargs[key] = list(value) if isinstance(value, tuple) else value
    if stream:
        kwargs["stream"] = True
    return kwargs


def _as_dict(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump()
        except Exception:
            return value
    return value


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _chat_usage(found: Any) -> dict[str, Any]:
    """OpenAI chat usage (``prompt_tokens``...): as it is, a plain dict."""
    plain = _as_dict(found)
    if isinstance(plain, Mapping):
        return dict(plain)
    out: dict[str, Any] = {key: _count(field(found, key)) for key in ("prompt_tokens", "completion_tokens")}
    details = field(found, "prompt_tokens_details")
    if details is not None:
        out["prompt_tokens_details"] = {"cached_tokens": _count(field(details, "cached_tokens"))}
    return out


def _input_output_usage(found: Any) -> dict[str, Any] | None:
    """``input_tokens`` / ``output_tokens`` usage in the chat shape: OpenAI Responses or Anthropic."""
    input_tokens = _count(field(found, "input_tokens"))
    output_tokens = _count(field(found, "output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    out: dict[str, Any] = {"prompt_tokens": input_tokens, "completion_tokens": output_tokens}
    details = field(found, "input_tokens_details")
    if details is not None:  # OpenAI Responses: cached tokens are inside input_tokens already
        out["prompt_tokens_details"] = {"cached_tokens": _count(field(details, "cached_tokens"))}
        reasoning = field(found, "output_tokens_details")
        if reasoning is not None:
            out["completion_tokens_details"] = {"reasoning_tokens": _count(field(reasoning, "reasoning_tokens"))}
        return out
    read = _count(field(found, "cache_read_input_tokens"))  # Anthropic: the cache comes on top of input_tokens
    write = _count(field(found, "cache_creation_input_tokens"))
    if read or write:
        out["prompt_tokens"] = (input_tokens or 0) + (read or 0) + (write or 0)
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_write_tokens": write}
    return out


def usage(raw: Any, additional_kwargs: Any) -> dict[str, Any] | None:
    """Token usage in the OpenAI chat shape, or None when the response carries none.

    From the provider's raw response first (OpenAI chat usage as is; OpenAI Responses usage counts cached
    tokens inside the input, Anthropic's on top, so those are added to the prompt tokens here), else from
    the token counts LlamaIndex integrations put in ``additional_kwargs``.
    """
    found = field(raw, "usage") if raw is not None else None
    if found is not None and not isinstance(found, (str, bytes, int, float)):
        if _count(field(found, "prompt_tokens")) is not None or _count(field(found, "completion_tokens")) is not None:
            return _chat_usage(found)
        converted = _input_output_usage(found)
        if converted is not None:
            return converted
    if isinstance(additional_kwargs, Mapping):
        prompt = _count(additional_kwargs.get("prompt_tokens"))
        completion = _count(additional_kwargs.get("completion_tokens"))
        if prompt is not None or completion is not None:
            return {"prompt_tokens": prompt, "completion_tokens": completion}
    return None


def _finish_reason(raw: Any) -> str:
    """The provider's finish reason from the raw response; ``stop`` for an LLM that returned and names none."""
    choices = field(raw, "choices") if raw is not None else None
    if isinstance(choices, (list, tuple)) and choices:
        reason = field(choices[0], "finish_reason")
        if isinstance(reason, str) and reason:
            return reason
    reason = field(raw, "stop_reason") if raw is not None else None
    return reason if isinstance(reason, str) and reason else "stop"


def llm_result(response: Any, model: str | None, text: str | None = None) -> dict[str, Any] | None:
    """A ``ChatResponse`` / ``CompletionResponse`` as an OpenAI chat-completion dict (with usage when known).

    ``text``: a stream's output as its reader got it (the joined deltas), in place of the response's own.
    """
    if response is None and text is None:
        return None
    message = getattr(response, "message", None)
    role = _role(message) if message is not None else "assistant"
    if text is None:
        text = getattr(message, "content", None) if message is not None else getattr(response, "text", None)
    raw = getattr(response, "raw", None)
    out: dict[str, Any] = {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": role, "content": text or ""}, "finish_reason": _finish_reason(raw)}
        ],
    }
    response_model = field(raw, "model") if raw is not None else None
    out["model"] = response_model if isinstance(response_model, str) else model
    response_id = field(raw, "id") if raw is not None else None
    if isinstance(response_id, str):
        out["id"] = response_id
    tokens = usage(raw, getattr(response, "additional_kwargs", None))
    if tokens is not None:
        out["usage"] = tokens
    return out
