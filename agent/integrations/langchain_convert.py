"""LangChain's callback payloads in the shapes the span parsers read: OpenAI chat kwargs and completions.

Why: enrichment reads a span's request from OpenAI/Anthropic-shaped kwargs and its response from an
OpenAI-shaped completion (``agent.enrich.providers``). Converting LangChain messages, invocation
parameters and ``LLMResult`` here, once, gives LangChain spans the same model, parameters, tokens, cost
and content as a direct client call, priced by the same table. Every function tolerates odd input: a
model integration may fill any field in its own way, and a conversion that fails yields less, never an
exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_openai_messages
from llmpulse.agent.enrich.providers import guess_provider

# Invocation parameters that mean the same in the OpenAI-shaped kwargs the request parser reads.
_PARAMS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "stop_sequences",
    "seed",
    "n",
    "response_format",
    "reasoning_effort",
    "service_tier",
    "tool_choice",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
)
# LangSmith's standard parameters (``BaseChatModel._get_ls_params``), read when the invocation params lack them.
_LS_PARAMS = (("ls_temperature", "temperature"), ("ls_max_tokens", "max_tokens"), ("ls_stop", "stop"))
_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "model_path", "repo_id")
# Run metadata that names the user, session or conversation (LangGraph puts ``thread_id`` there).
_METADATA_FIELDS = (("user_id", "user_id"), ("session_id", "session_id"), ("thread_id", "conversation_id"))
_METADATA_FIELDS_ANY = frozenset(key for key, _ in _METADATA_FIELDS)


def model_of(params: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
    """The model a run asked for: LangSmith's ``ls_model_name``, else the invocation parameters'."""
    name = metadata.get("ls_model_name")
    if isinstance(name, str) and name:
        return name
    for key in _MODEL_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def provider_of(model: str | None, metadata: Mapping[str, Any]) -> str | None:
    provider = metadata.get("ls_provider")
    if isinstance(provider, str) and provider:
        return provider
    return guess_provider(model)


def request_kwargs(
    model: str | None, params: Mapping[str, Any], metadata: Mapping[str, Any], **request: Any
) -> dict[str, Any]:
    """OpenAI-shaped kwargs: the model, the request (``messages=`` or ``prompt=``) and the sampling parameters."""
    kwargs: dict[str, Any] = {"model": model} if model else {}
    kwargs.update(request)
    for key in _PARAMS:
        value = params.get(key)
        if value is not None:
            kwargs[key] = value
    for ls_key, key in _LS_PARAMS:
        if key not in kwargs and metadata.get(ls_key) is not None:
            kwargs[key] = metadata[ls_key]
    return kwargs


def chat_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """LangChain messages as OpenAI chat messages (roles, text, tool calls, tool results)."""
    try:
        return convert_to_openai_messages(list(messages))
    except Exception:  # content blocks a converter does not know: keep role and text
        return [_plain_message(m) for m in messages]


def _plain_message(message: Any) -> dict[str, Any]:
    role = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(
        getattr(message, "type", ""), "user"
    )
    text = getattr(message, "text", None)
    if callable(text):  # langchain-core < 1.0: ``text()`` was a method
        text = text()
    return {"role": role, "content": text if isinstance(text, str) else str(getattr(message, "content", message))}


def metadata_fields(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """``update_current_span`` fields named in run metadata: user, session, conversation (``thread_id``)."""
    if not metadata or _METADATA_FIELDS_ANY.isdisjoint(metadata):
        return {}
    return {field: str(metadata[key]) for key, field in _METADATA_FIELDS if metadata.get(key) is not None}


def document_texts(documents: Sequence[Any]) -> list[str]:
    """The text of retrieved documents (``page_content``), in order."""
    texts = []
    for doc in documents or ():
        text = getattr(doc, "page_content", None)
        if text is None and isinstance(doc, Mapping):
            text = doc.get("page_content") or doc.get("content")
        texts.append(text if isinstance(text, str) else str(doc))
    return texts


# --- responses ---------------------------------------------------------------------------------------


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_metadata(usage: Any) -> dict[str, Any] | None:
    """LangChain's ``usage_metadata`` as OpenAI usage.

    Both count cached input inside the input tokens (LangChain normalizes every provider so: Anthropic's
    cache reads and writes are added in), so the numbers carry over as they are.
    """
    if not usage:
        return None
    prompt = _int(_get(usage, "input_tokens"))
    completion = _int(_get(usage, "output_tokens"))
    if prompt is None and completion is None:
        return None
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    total = _int(_get(usage, "total_tokens"))
    if total is not None:
        out["total_tokens"] = total
    details = _get(usage, "input_token_details") or {}
    cache_read, cache_creation = _int(_get(details, "cache_read")), _int(_get(details, "cache_creation"))
    if cache_read is not None or cache_creation is not None:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read, "cache_write_tokens": cache_creation}
    reasoning = _int(_get(_get(usage, "output_token_details") or {}, "reasoning"))
    if reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def usage_from_llm_output(llm_output: Any) -> dict[str, Any] | None:
    """``llm_output["token_usage"]`` (OpenAI's shape) or ``llm_output["usage"]`` (Anthropic's) as OpenAI usage."""
    if not isinstance(llm_output, Mapping):
        return None
    usage = llm_output.get("token_usage") or llm_output.get("usage")
    if not isinstance(usage, Mapping):
        return None
    if _int(usage.get("prompt_tokens")) is not None or _int(usage.get("completion_tokens")) is not None:
        return dict(usage)
    base = _int(usage.get("input_tokens"))
    output = _int(usage.get("output_tokens"))
    if base is None and output is None:
        return None
    read = _int(usage.get("cache_read_input_tokens"))
    creation = _int(usage.get("cache_creation_input_tokens"))
    out: dict[str, Any] = {"completion_tokens": output}
    # Anthropic counts cache reads and writes apart from input_tokens; OpenAI's prompt_tokens include them.
    out["prompt_tokens"] = None if base is None else base + (read or 0) + (creation or 0)
    if read is not None or creation is not None:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_write_tokens": creation}
    return out


def _response_metadata(generation: Any) -> Mapping[str, Any]:
    metadata = _get(_get(generation, "message"), "response_metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _finish_reason(generation: Any) -> str | None:
    for source in (_get(generation, "generation_info"), _response_metadata(generation)):
        if isinstance(source, Mapping):
            reason = source.get("finish_reason") or source.get("stop_reason") or source.get("done_reason")
            if isinstance(reason, str):
                return reason
    return None


def completion(response: Any, requested_model: str | None) -> dict[str, Any] | None:
    """One run's ``LLMResult`` as an OpenAI chat completion (chat models) or text completion (LLMs)."""
    batches = _get(response, "generations") or []
    generations = list(batches[0]) if batches else []
    llm_output = _get(response, "llm_output")
    first = generations[0] if generations else None
    metadata = _response_metadata(first)
    model = metadata.get("model_name") or metadata.get("model")
    if not isinstance(model, str) and isinstance(llm_output, Mapping):
        model = llm_output.get("model_name") or llm_output.get("model")
    usage = usage_from_metadata(_get(_get(first, "message"), "usage_metadata")) or usage_from_llm_output(llm_output)
    out: dict[str, Any] = {"model": model if isinstance(model, str) else requested_model}
    response_id = metadata.get("id")
    if isinstance(response_id, str):
        out["id"] = response_id
    chat = first is not None and isinstance(_get(first, "message"), BaseMessage)
    choices = []
    for index, generation in enumerate(generations):
        choice: dict[str, Any] = {"index": index}
        if chat:
            choice["message"] = message = chat_messages([generation.message])[0]
        else:
            choice["text"] = _get(generation, "text") or ""
            message = {}
        # The run ended without error; a model that does not say why stopped (fake and local models) stopped.
        choice["finish_reason"] = _finish_reason(generation) or ("tool_calls" if message.get("tool_calls") else "stop")
        choices.append(choice)
    out["object"] = "chat.completion" if chat else "text_completion"
    out["choices"] = choices
    if usage is not None:
        out["usage"] = usage
    return out
