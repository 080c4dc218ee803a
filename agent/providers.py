"""Parse LLM request kwargs, responses and streams into provider-neutral records.

Why: the agent records OpenTelemetry GenAI attributes for calls made through the OpenAI and Anthropic SDKs (or
anything that returns the same shapes, including plain dicts and strings) without importing those SDKs. Parsing
runs on a background thread after the call returned, so it must be cheap (attribute access, no ``model_dump()``)
and must never raise: odd input yields ``None`` or a partially filled record.

Message shapes follow the semconv JSON schemas for ``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
``gen_ai.system_instructions`` (semantic-conventions v1.41.0, see ``shared/reference/standards.md`` section 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ParsedRequest", "ParsedResponse", "map_finish_reason", "parse_request", "parse_response", "parse_stream"]


@dataclass(slots=True)
class ParsedRequest:
    """What an LLM call asked for, in semconv terms (``gen_ai.request.*`` and friends)."""

    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: list[str] | None = None
    seed: int | None = None
    choice_count: int | None = None
    stream: bool | None = None
    output_type: str | None = None
    input_messages: list[dict] | None = None
    system_instructions: list[dict] | None = None
    extra_params: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class ParsedResponse:
    """What an LLM call returned, in semconv terms (``gen_ai.response.*`` / ``gen_ai.usage.*``).

    ``input_tokens`` includes cached tokens (cache read and cache creation), as semconv requires;
    ``reasoning_output_tokens`` is included in ``output_tokens``.
    """

    provider: str | None = None
    operation: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    output_text: str | None = None
    output_messages: list[dict] | None = None
    token_logprobs: list[float] | None = None


# --------------------------------------------------------------------------------------------------------------------
# Small, defensive accessors. They work on dicts, pydantic models and arbitrary objects alike.
# --------------------------------------------------------------------------------------------------------------------

_SCALARS = (str, bytes, bytearray, int, float, bool, list, tuple, set, frozenset)
_ATTR, _MAPPING, _SCALAR = 0, 1, 2
_ACCESS_BY_TYPE: dict[type, int] = {}  # per-type access strategy; ABC isinstance checks are slow per call


def _access(cls: type) -> int:
    kind = _ACCESS_BY_TYPE.get(cls)
    if kind is None:
        kind = _SCALAR if issubclass(cls, _SCALARS) else _MAPPING if issubclass(cls, Mapping) else _ATTR
        if len(_ACCESS_BY_TYPE) < 4096:
            _ACCESS_BY_TYPE[cls] = kind
    return kind


def _get(obj: Any, key: str) -> Any:
    """Return ``obj[key]`` for mappings, else ``obj.key``; ``None`` when absent or unreadable."""
    if obj is None:
        return None
    cls = type(obj)
    if cls is dict:
        return obj.get(key)
    kind = _access(cls)
    try:
        if kind == _ATTR:
            return getattr(obj, key, None)
        if kind == _MAPPING:
            return obj.get(key)
    except Exception:
        return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _list(value: Any) -> list | tuple | None:
    return value if isinstance(value, (list, tuple)) else None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _given(value: Any) -> bool:
    """False for ``None`` and the SDKs' ``NOT_GIVEN`` / ``omit`` sentinels."""
    if value is None:
        return False
    return type(value).__name__ not in ("NotGiven", "Omit")


def _json_or_raw(value: Any) -> Any:
    """Decode tool-call arguments sent as a JSON string; keep anything else (or undecodable text) as is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


# --------------------------------------------------------------------------------------------------------------------
# Finish reasons
# --------------------------------------------------------------------------------------------------------------------

_FINISH_MAP: dict[str, str] = {
    # OpenAI chat / completions
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    # Anthropic
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
    # OpenAI Responses API status / incomplete_details.reason
    "completed": "stop",
    "max_output_tokens": "length",
    "failed": "error",
    "cancelled": "error",
    # already-semconv values and common aliases
    "tool_call": "tool_call",
    "error": "error",
    "safety": "content_filter",
}


def map_finish_reason(raw: str | None) -> str:
    """Map a provider finish reason to semconv ``FinishReason`` (stop|length|content_filter|tool_call|error).

    Missing reasons map to ``error`` (the call did not finish normally); unknown ones are passed through lowercased.
    """
    if not raw or not isinstance(raw, str):
        return "error"
    key = raw.lower()
    return _FINISH_MAP.get(key, key)


# --------------------------------------------------------------------------------------------------------------------
# Content parts (requests and responses share these)
# --------------------------------------------------------------------------------------------------------------------


def _text_part(text: str) -> dict:
    return {"type": "text", "content": text}


def _tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict:
    part: dict[str, Any] = {"type": "tool_call", "id": _str(call_id), "name": _str(name) or ""}
    if arguments is not None:
        part["arguments"] = _json_or_raw(arguments)
    return part


def _data_url_part(url: str, modality: str) -> dict:
    """Turn ``data:<mime>;base64,<payload>`` into a blob part and anything else into a uri part."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        mime = header[5:].split(";", 1)[0] or None
        part: dict[str, Any] = {"type": "blob", "modality": modality, "content": payload}
        if mime:
            part["mime_type"] = mime
        return part
    return {"type": "uri", "modality": modality, "uri": url}


def _flatten_text(content: Any) -> Any:
    """Tool results may be a string or a list of text blocks; collapse text lists into one string."""
    if isinstance(content, str) or content is None:
        return content
    items = _list(content)
    if items is None:
        return None
    texts = [t for t in (_str(_get(i, "text")) for i in items) if t is not None]
    if len(texts) == len(items):
        return "".join(texts)
    return [_content_part(i) for i in items]


def _content_part(block: Any) -> dict | None:
    """Convert one provider content block (OpenAI chat/Responses or Anthropic) to a semconv part."""
    if isinstance(block, str):
        return _text_part(block)
    kind = _str(_get(block, "type"))
    if kind is None:
        text = _str(_get(block, "text"))
        return _text_part(text) if text is not None else None
    if kind in ("text", "input_text", "output_text"):
        return _text_part(_str(_get(block, "text")) or "")
    if kind == "refusal":
        return {"type": "refusal", "content": _str(_get(block, "refusal")) or ""}
    if kind == "image_url":  # OpenAI chat
        image = _get(block, "image_url")
        url = _str(image) or _str(_get(image, "url"))
        return _data_url_part(url, "image") if url else {"type": "uri", "modality": "image", "uri": ""}
    if kind == "input_image":  # OpenAI Responses
        url = _str(_get(block, "image_url"))
        if url:
            return _data_url_part(url, "image")
        return {"type": "file", "modality": "image", "file_id": _str(_get(block, "file_id")) or ""}
    if kind == "input_audio":
        audio = _get(block, "input_audio")
        fmt = _str(_get(audio, "format"))
        part: dict[str, Any] = {"type": "blob", "modality": "audio", "content": _str(_get(audio, "data")) or ""}
        if fmt:
            part["mime_type"] = f"audio/{fmt}"
        return part
    if kind in ("file", "input_file"):
        inner = _get(block, "file") if kind == "file" else block
        file_id = _str(_get(inner, "file_id"))
        if file_id:
            return {"type": "file", "file_id": file_id}
        url = _str(_get(inner, "file_url"))
        if url:
            return {"type": "uri", "uri": url}
        data = _str(_get(inner, "file_data"))
        if data:
            part = _data_url_part(data, "document") if data.startswith("data:") else {"type": "blob", "content": data}
            part.pop("modality", None)
            return part
        return {"type": "file"}
    if kind in ("image", "document"):  # Anthropic
        source = _get(block, "source")
        src_type = _str(_get(source, "type"))
        modality = "image" if kind == "image" else "document"
        if src_type == "base64":
            part = {"type": "blob", "modality": modality, "content": _str(_get(source, "data")) or ""}
            mime = _str(_get(source, "media_type"))
            if mime:
                part["mime_type"] = mime
            return part
        if src_type == "url":
            return {"type": "uri", "modality": modality, "uri": _str(_get(source, "url")) or ""}
        if src_type == "file":
            return {"type": "file", "modality": modality, "file_id": _str(_get(source, "file_id")) or ""}
        if src_type == "text":
            return _text_part(_str(_get(source, "data")) or "")
        return {"type": modality}
    if kind == "tool_use":  # Anthropic assistant tool call
        return _tool_call_part(_get(block, "id"), _get(block, "name"), _get(block, "input"))
    if kind == "tool_result":  # Anthropic tool result sent back by the user
        return {
            "type": "tool_call_response",
            "id": _str(_get(block, "tool_use_id")),
            "response": _flatten_text(_get(block, "content")),
        }
    if kind == "function_call":  # OpenAI Responses item
        return _tool_call_part(
            _get(block, "call_id") or _get(block, "id"), _get(block, "name"), _get(block, "arguments")
        )
    if kind == "custom_tool_call":
        return _tool_call_part(_get(block, "call_id") or _get(block, "id"), _get(block, "name"), _get(block, "input"))
    if kind in ("function_call_output", "custom_tool_call_output"):
        return {"type": "tool_call_response", "id": _str(_get(block, "call_id")), "response": _get(block, "output")}
    if kind == "thinking":
        return {"type": "reasoning", "content": _str(_get(block, "thinking")) or ""}
    if kind == "reasoning":  # OpenAI Responses reasoning item: only the summary is readable
        summary = _list(_get(block, "summary")) or []
        texts = [t for t in (_str(_get(s, "text")) for s in summary) if t]
        return {"type": "reasoning", "content": "\n".join(texts)}
    if kind == "server_tool_use":
        return {"type": "server_tool_call", "id": _str(_get(block, "id")), "name": _str(_get(block, "name")) or ""}
    if kind.endswith("_tool_result"):
        return {"type": "server_tool_call_response", "id": _str(_get(block, "tool_use_id")), "name": kind}
    if kind.endswith("_call"):  # OpenAI Responses hosted tools: web_search_call, file_search_call, mcp_call, ...
        name = _str(_get(block, "name")) or kind[: -len("_call")]
        return {"type": "server_tool_call", "id": _str(_get(block, "id")), "name": name}
    if kind == "redacted_thinking":
        return None
    return {"type": kind}


def _content_parts(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [_text_part(content)]
    items = _list(content)
    if items is None:
        return []
    parts = []
    for block in items:
        part = _content_part(block)
        if part is not None:
            parts.append(part)
    return parts


# --------------------------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------------------------

_ROLE_MAP = {"developer": "system"}

# Request params recorded in ``extra_params`` when scalar. Everything else is either a semconv attribute or content.
_EXTRA_SCALAR_PARAMS = (
    "reasoning_effort",
    "service_tier",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "store",
    "truncation",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
    "background",
    "max_tool_calls",
    "previous_response_id",
    "inference_geo",
    "speed",
)


def _guess_provider(model: str | None) -> str | None:
    """Guess the provider only from unmistakable model names (``claude-*``, ``gpt-4o``, ``o3-mini``, ``openai/...``)."""
    if not model:
        return None
    low = model.lower()
    if "/" in low:  # "openai/gpt-4o" is explicit; "meta-llama/..." via some gateway is not ours to guess
        head = low.partition("/")[0]
        return head if head in ("openai", "anthropic") else None
    if low.startswith("claude-"):
        return "anthropic"
    if low.startswith("gpt-oss"):
        return None  # open-weights model, served by many providers
    if low.startswith(("gpt-", "chatgpt-", "text-embedding-", "davinci", "babbage", "omni-moderation", "gpt-image")):
        return "openai"
    if len(low) >= 2 and low[0] == "o" and low[1].isdigit() and (len(low) == 2 or low[2] == "-"):
        return "openai"  # o1, o3-mini, o4-mini-2025-04-16
    return None


def _output_type(fmt: Any) -> str | None:
    """Map response_format / text.format / output_config.format to semconv ``gen_ai.output.type``."""
    if fmt is None:
        return None
    if isinstance(fmt, type):  # pydantic model passed to .parse()
        return "json"
    if isinstance(fmt, str):
        kind = fmt
    else:
        kind = _str(_get(fmt, "type"))
        if kind is None:
            return None
    kind = kind.lower()
    if kind.startswith("json"):
        return "json"
    if kind == "text":
        return "text"
    return None


def _message_to_semconv(msg: Any) -> dict | None:
    """One OpenAI chat, Anthropic or Responses-API input message/item to a semconv ``ChatMessage``."""
    if isinstance(msg, str):
        return {"role": "user", "parts": [_text_part(msg)]}
    role = _str(_get(msg, "role"))
    item_type = _str(_get(msg, "type"))
    if role is None:
        if item_type in ("function_call", "custom_tool_call", "reasoning"):
            part = _content_part(msg)
            return {"role": "assistant", "parts": [part] if part else []}
        if item_type in ("function_call_output", "custom_tool_call_output"):
            part = _content_part(msg)
            return {"role": "tool", "parts": [part] if part else []}
        if item_type is not None:
            return None  # item_reference and other non-message items
        role = "user"
    role = _ROLE_MAP.get(role, role)
    content = _get(msg, "content")
    if role == "tool":
        response = _flatten_text(content)
        parts: list[dict] = [
            {"type": "tool_call_response", "id": _str(_get(msg, "tool_call_id")), "response": response}
        ]
    else:
        parts = _content_parts(content)
    for call in _list(_get(msg, "tool_calls")) or ():
        parts.append(_openai_tool_call(call))
    function_call = _get(msg, "function_call")
    if function_call is not None:
        parts.append(_tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
    out: dict[str, Any] = {"role": role, "parts": parts}
    name = _str(_get(msg, "name"))
    if name:
        out["name"] = name
    return out


def _messages_to_semconv(messages: Any) -> list[dict] | None:
    if isinstance(messages, str):
        return [{"role": "user", "parts": [_text_part(messages)]}]
    items = _list(messages)
    if items is None:
        return None
    out = []
    for msg in items:
        converted = _message_to_semconv(msg)
        if converted is not None:
            out.append(converted)
    return out


def _instructions(value: Any) -> list[dict] | None:
    if isinstance(value, str):
        return [_text_part(value)] if value else None
    parts = _content_parts(value)
    return parts or None


def parse_request(kwargs: Mapping[str, object]) -> ParsedRequest:
    """Read the keyword arguments of an LLM SDK call (OpenAI chat/completions/responses, Anthropic messages).

    Args:
        kwargs: The keyword arguments passed to the SDK method.

    Returns:
        A ``ParsedRequest``; empty when ``kwargs`` is not a mapping. Never raises.
    """
    req = ParsedRequest()
    if not isinstance(kwargs, Mapping):
        return req
    try:
        _fill_request(req, kwargs)
    except Exception:  # defensive: a half-filled record beats an exception inside the user's app
        pass
    return req


def _fill_request(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    model = _str(kw.get("model"))
    req.model = model
    req.provider = _guess_provider(model)

    messages = kw.get("messages")
    prompt = kw.get("prompt")
    inp = kw.get("input")
    if _given(messages):
        req.operation = "chat"
        req.input_messages = _messages_to_semconv(messages)
    elif _given(prompt):
        req.operation = "text_completion"
        if isinstance(prompt, str):
            req.input_messages = [{"role": "user", "parts": [_text_part(prompt)]}]
        elif _list(prompt) is not None and all(isinstance(p, str) for p in prompt):  # type: ignore[union-attr]
            req.input_messages = [{"role": "user", "parts": [_text_part(p) for p in prompt]}]  # type: ignore[union-attr]
    elif _given(inp):
        is_embedding = (
            "embed" in (model or "").lower() or _given(kw.get("encoding_format")) or _given(kw.get("dimensions"))
        )
        if is_embedding:
            req.operation = "embeddings"
        else:
            req.operation = "chat"  # OpenAI Responses API
            req.input_messages = _messages_to_semconv(inp)

    req.temperature = _float(kw.get("temperature"))
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample"):
        value = _int(kw.get(key))
        if value is not None:
            req.max_tokens = value
            break
    req.top_p = _float(kw.get("top_p"))
    req.top_k = _float(kw.get("top_k"))
    req.frequency_penalty = _float(kw.get("frequency_penalty"))
    req.presence_penalty = _float(kw.get("presence_penalty"))
    stop = kw.get("stop")
    if not _given(stop):
        stop = kw.get("stop_sequences")
    if isinstance(stop, str):
        req.stop_sequences = [stop]
    elif _list(stop) is not None:
        req.stop_sequences = [s for s in stop if isinstance(s, str)]  # type: ignore[union-attr]
    req.seed = _int(kw.get("seed"))
    req.choice_count = _int(kw.get("n"))
    req.stream = _bool(kw.get("stream"))

    text_cfg = kw.get("text")
    output_cfg = kw.get("output_config")
    req.output_type = (
        _output_type(kw.get("response_format"))
        or _output_type(_get(text_cfg, "format"))
        or _output_type(_get(output_cfg, "format"))
        or _output_type(kw.get("output_format"))
    )

    system = kw.get("system")
    instructions = kw.get("instructions")
    if _given(system):
        req.system_instructions = _instructions(system)
    elif _given(instructions):
        req.system_instructions = _instructions(instructions)

    extra = req.extra_params
    for key in _EXTRA_SCALAR_PARAMS:
        value = kw.get(key)
        if _given(value) and _is_scalar(value):
            extra[key] = value
    reasoning = kw.get("reasoning")
    for key in ("effort", "summary"):
        value = _get(reasoning, key)
        if _is_scalar(value):
            extra[f"reasoning_{key}"] = value
    verbosity = _get(text_cfg, "verbosity")
    if _is_scalar(verbosity):
        extra["verbosity"] = verbosity
    effort = _get(output_cfg, "effort")
    if _is_scalar(effort):
        extra["effort"] = effort
    thinking = kw.get("thinking")
    for key in ("type", "budget_tokens"):
        value = _get(thinking, key)
        if _is_scalar(value):
            extra[f"thinking_{key}"] = value
    tool_choice = kw.get("tool_choice")
    if isinstance(tool_choice, str):
        extra["tool_choice"] = tool_choice
    elif _str(_get(tool_choice, "type")):
        extra["tool_choice"] = _get(tool_choice, "type")
    conversation = kw.get("conversation")
    conversation_id = _str(conversation) or _str(_get(conversation, "id"))
    if conversation_id:
        extra["conversation_id"] = conversation_id


# --------------------------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------------------------


def parse_response(obj: object) -> ParsedResponse | None:
    """Parse a completed LLM response.

    Handles OpenAI ``ChatCompletion``, Responses-API ``Response``, legacy ``Completion``, embeddings responses,
    Anthropic ``Message`` (SDK objects or dicts of the same shape) and plain strings.

    Args:
        obj: What the SDK call (or the user's function) returned.

    Returns:
        A ``ParsedResponse``, or ``None`` when the object is not recognised. Never raises.
    """
    try:
        return _parse_response(obj)
    except Exception:
        return None


def _parse_response(obj: Any) -> ParsedResponse | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return ParsedResponse(output_text=obj)
    if isinstance(obj, _SCALARS):
        return None
    object_type = _str(_get(obj, "object"))
    kind = _str(_get(obj, "type"))
    if object_type == "chat.completion":
        return _parse_chat(obj)
    if object_type == "text_completion":
        return _parse_completion(obj)
    if object_type == "response":
        return _parse_responses_api(obj)
    if kind == "message":
        return _parse_anthropic(obj)
    if object_type == "list" and _get(obj, "data") is not None:
        return _parse_embeddings(obj)
    if kind is not None and kind.startswith("response.") and _get(obj, "response") is not None:
        return _parse_responses_api(_get(obj, "response"))  # a Responses terminal stream event
    if kind == "message_stop" and _get(obj, "message") is not None:
        return _parse_anthropic(_get(obj, "message"))
    # Shape sniffing for dicts / objects lacking the discriminator field.
    choices = _list(_get(obj, "choices"))
    if choices:
        first = choices[0]
        if _get(first, "message") is not None:
            return _parse_chat(obj)
        if _get(first, "text") is not None:
            return _parse_completion(obj)
        return None
    if _list(_get(obj, "output")) is not None and (_get(obj, "status") is not None or _get(obj, "usage") is not None):
        return _parse_responses_api(obj)
    if _list(_get(obj, "content")) is not None and _get(obj, "role") == "assistant":
        return _parse_anthropic(obj)
    return None


def _apply_openai_usage(res: ParsedResponse, usage: Any) -> None:
    """Chat/completions usage: prompt_tokens already include cached tokens, completion_tokens include reasoning."""
    if usage is None:
        return
    prompt = _int(_get(usage, "prompt_tokens"))
    completion = _int(_get(usage, "completion_tokens"))
    if prompt is None and completion is None:  # some OpenAI-compatible servers use the newer names
        prompt = _int(_get(usage, "input_tokens"))
        completion = _int(_get(usage, "output_tokens"))
    res.input_tokens = prompt
    res.output_tokens = completion
    prompt_details = _get(usage, "prompt_tokens_details")
    res.cache_read_input_tokens = _int(_get(prompt_details, "cached_tokens"))
    res.cache_creation_input_tokens = _int(_get(prompt_details, "cache_write_tokens"))
    res.reasoning_output_tokens = _int(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))


def _apply_responses_usage(res: ParsedResponse, usage: Any) -> None:
    if usage is None:
        return
    res.input_tokens = _int(_get(usage, "input_tokens"))
    res.output_tokens = _int(_get(usage, "output_tokens"))
    details = _get(usage, "input_tokens_details")
    res.cache_read_input_tokens = _int(_get(details, "cached_tokens"))
    res.cache_creation_input_tokens = _int(_get(details, "cache_write_tokens"))
    res.reasoning_output_tokens = _int(_get(_get(usage, "output_tokens_details"), "reasoning_tokens"))


def _apply_anthropic_usage(
    res: ParsedResponse, input_tokens: Any, output_tokens: Any, cache_read: Any, cache_creation: Any, reasoning: Any
) -> None:
    """Anthropic reports uncached input separately from cache reads/writes; semconv wants the sum."""
    base = _int(input_tokens)
    read = _int(cache_read)
    creation = _int(cache_creation)
    res.input_tokens = None if base is None else base + (read or 0) + (creation or 0)
    res.output_tokens = _int(output_tokens)
    res.cache_read_input_tokens = read
    res.cache_creation_input_tokens = creation
    res.reasoning_output_tokens = _int(reasoning)


def _openai_tool_call(call: Any) -> dict:
    kind = _str(_get(call, "type"))
    if kind == "custom":
        custom = _get(call, "custom")
        return _tool_call_part(_get(call, "id"), _get(custom, "name"), _get(custom, "input"))
    function = _get(call, "function")
    return _tool_call_part(_get(call, "id"), _get(function, "name"), _get(function, "arguments"))


def _logprobs(entries: Any) -> list[float] | None:
    items = _list(entries)
    if not items:
        return None
    values = [_float(_get(e, "logprob")) for e in items]
    return [v for v in values if v is not None] or None


def _parse_chat(obj: Any) -> ParsedResponse:
    res = ParsedResponse(
        provider="openai",
        operation="chat",
        response_model=_str(_get(obj, "model")),
        response_id=_str(_get(obj, "id")),
    )
    messages = []
    for i, choice in enumerate(_list(_get(obj, "choices")) or ()):
        raw = _str(_get(choice, "finish_reason"))
        if raw:
            res.finish_reasons.append(raw)
        message = _get(choice, "message")
        content = _get(message, "content")
        parts = _content_parts(content)
        refusal = _str(_get(message, "refusal"))
        if refusal:
            parts.append({"type": "refusal", "content": refusal})
        for call in _list(_get(message, "tool_calls")) or ():
            parts.append(_openai_tool_call(call))
        function_call = _get(message, "function_call")
        if function_call is not None:
            parts.append(_tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
        messages.append(
            {
                "role": _str(_get(message, "role")) or "assistant",
                "parts": parts,
                "finish_reason": map_finish_reason(raw),
            }
        )
        if i == 0:
            if isinstance(content, str):
                res.output_text = content
            elif content is not None:
                res.output_text = "".join(p["content"] for p in parts if p.get("type") == "text")
            res.token_logprobs = _logprobs(_get(_get(choice, "logprobs"), "content"))
    res.output_messages = messages
    _apply_openai_usage(res, _get(obj, "usage"))
    return res


def _parse_completion(obj: Any) -> ParsedResponse:
    res = ParsedResponse(
        provider="openai",
        operation="text_completion",
        response_model=_str(_get(obj, "model")),
        response_id=_str(_get(obj, "id")),
    )
    messages = []
    for i, choice in enumerate(_list(_get(obj, "choices")) or ()):
        raw = _str(_get(choice, "finish_reason"))
        if raw:
            res.finish_reasons.append(raw)
        text = _str(_get(choice, "text"))
        parts = [_text_part(text)] if text is not None else []
        messages.append({"role": "assistant", "parts": parts, "finish_reason": map_finish_reason(raw)})
        if i == 0:
            res.output_text = text
            values = _list(_get(_get(choice, "logprobs"), "token_logprobs"))
            if values:
                floats = [v for v in (_float(x) for x in values) if v is not None]
                res.token_logprobs = floats or None
    res.output_messages = messages
    _apply_openai_usage(res, _get(obj, "usage"))
    return res


def _parse_embeddings(obj: Any) -> ParsedResponse:
    res = ParsedResponse(provider=None, operation="embeddings", response_model=_str(_get(obj, "model")))
    usage = _get(obj, "usage")
    res.input_tokens = _int(_get(usage, "prompt_tokens"))
    if res.input_tokens is None:
        res.input_tokens = _int(_get(usage, "input_tokens"))
    return res


def _responses_finish(status: str | None, incomplete_reason: str | None, has_tool_call: bool) -> tuple[str | None, str]:
    """Responses API has no finish_reason: derive (raw, semconv) from status and incomplete_details.reason."""
    if status == "incomplete" and incomplete_reason:
        return incomplete_reason, map_finish_reason(incomplete_reason)
    if status in (None, "completed") and has_tool_call:
        return status, "tool_call"
    if status is None:
        return None, "error"
    if status in ("in_progress", "queued"):
        return status, "error"
    return status, map_finish_reason(status)


def _parse_responses_api(obj: Any) -> ParsedResponse:
    res = ParsedResponse(
        provider="openai",
        operation="chat",
        response_model=_str(_get(obj, "model")),
        response_id=_str(_get(obj, "id")),
    )
    parts: list[dict] = []
    texts: list[str] = []
    logprobs: list[float] = []
    has_tool_call = False
    for item in _list(_get(obj, "output")) or ():
        kind = _str(_get(item, "type"))
        if kind == "message":
            for block in _list(_get(item, "content")) or ():
                part = _content_part(block)
                if part is None:
                    continue
                parts.append(part)
                if _get(block, "type") == "output_text":
                    texts.append(part["content"])
                    logprobs.extend(_logprobs(_get(block, "logprobs")) or ())
        else:
            part = _content_part(item)
            if part is None:
                continue
            if part["type"] == "tool_call":
                has_tool_call = True
            if part["type"] == "reasoning" and not part["content"]:
                continue  # encrypted / summary-less reasoning carries nothing readable
            parts.append(part)
    status = _str(_get(obj, "status"))
    reason = _str(_get(_get(obj, "incomplete_details"), "reason"))
    raw, mapped = _responses_finish(status, reason, has_tool_call)
    if raw:
        res.finish_reasons.append(raw)
    res.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": mapped}]
    res.output_text = "".join(texts) if texts else None
    res.token_logprobs = logprobs or None
    _apply_responses_usage(res, _get(obj, "usage"))
    return res


def _parse_anthropic(obj: Any) -> ParsedResponse:
    res = ParsedResponse(
        provider="anthropic",
        operation="chat",
        response_model=_str(_get(obj, "model")),
        response_id=_str(_get(obj, "id")),
    )
    parts = _content_parts(_get(obj, "content"))
    texts = [p["content"] for p in parts if p.get("type") == "text"]
    raw = _str(_get(obj, "stop_reason"))
    if raw:
        res.finish_reasons.append(raw)
    res.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": map_finish_reason(raw)}]
    res.output_text = "".join(texts) if texts else None
    usage = _get(obj, "usage")
    if usage is not None:
        _apply_anthropic_usage(
            res,
            _get(usage, "input_tokens"),
            _get(usage, "output_tokens"),
            _get(usage, "cache_read_input_tokens"),
            _get(usage, "cache_creation_input_tokens"),
            _get(_get(usage, "output_tokens_details"), "thinking_tokens"),
        )
    return res


# --------------------------------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------------------------------

_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        # higher-level events of the Anthropic SDK's MessageStream
        "text",
        "thinking",
        "input_json",
        "citation",
        "signature",
    }
)
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _ChatChoiceAcc:
    """Accumulates one choice of an OpenAI chat (or legacy completion) stream."""

    __slots__ = ("finish_reason", "logprobs", "refusal", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.role: str | None = None
        self.finish_reason: str | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.logprobs: list[float] = []


class _StreamAcc:
    """State for ``parse_stream``; the first recognised chunk decides which provider format is being read."""

    def __init__(self) -> None:
        self.kind: str | None = None  # "chat" | "text_completion" | "responses" | "anthropic"
        self.plain: list[str] = []
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        # OpenAI chat
        self.choices: dict[int, _ChatChoiceAcc] = {}
        # OpenAI Responses
        self.final_response: Any = None
        self.started_response: Any = None
        self.text_deltas: list[str] = []
        self.delta_logprobs: list[float] = []
        self.done_items: dict[int, Any] = {}
        # Anthropic
        self.start_usage: Any = None
        self.delta_usage: Any = None
        self.stop_reason: str | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.sdk_text: list[str] = []
        self.raw_text_seen = False
        self.final_message: Any = None

    # -- dispatch ----------------------------------------------------------------------------------------------------

    def feed(self, chunk: Any) -> None:
        if isinstance(chunk, str):
            self.plain.append(chunk)
            return
        if chunk is None or isinstance(chunk, _SCALARS):
            return
        kind = _str(_get(chunk, "type"))
        if kind == "chunk":  # openai.lib ChatCompletionStreamManager's ChunkEvent wraps the raw chunk
            chunk = _get(chunk, "chunk")
            kind = None
        object_type = _str(_get(chunk, "object"))
        if object_type in ("chat.completion.chunk", "text_completion") or (
            kind is None and _list(_get(chunk, "choices")) is not None
        ):
            if self._claim("text_completion" if object_type == "text_completion" else "chat"):
                self._chat(chunk)
        elif kind is not None and kind.startswith("response."):
            if self._claim("responses"):
                self._responses(chunk, kind)
        elif kind in _ANTHROPIC_EVENTS and self._claim("anthropic"):
            self._anthropic(chunk, kind)

    def _claim(self, kind: str) -> bool:
        if self.kind is None:
            self.kind = kind
            return True
        return self.kind == kind or {self.kind, kind} == {"chat", "text_completion"}

    # -- OpenAI chat -------------------------------------------------------------------------------------------------

    def _chat(self, chunk: Any) -> None:
        self.id = self.id or _str(_get(chunk, "id"))
        self.model = self.model or _str(_get(chunk, "model"))
        usage = _get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in _list(_get(chunk, "choices")) or ():
            index = _int(_get(choice, "index")) or 0
            acc = self.choices.get(index)
            if acc is None:
                acc = self.choices[index] = _ChatChoiceAcc()
            finish = _str(_get(choice, "finish_reason"))
            if finish:
                acc.finish_reason = finish
            entries = _list(_get(_get(choice, "logprobs"), "content"))
            if entries:
                acc.logprobs.extend(_logprobs(entries) or ())
            text = _str(_get(choice, "text"))  # legacy completions stream
            if text:
                acc.text.append(text)
            delta = _get(choice, "delta")
            if delta is None:
                continue
            acc.role = acc.role or _str(_get(delta, "role"))
            content = _str(_get(delta, "content"))
            if content:
                acc.text.append(content)
            refusal = _str(_get(delta, "refusal"))
            if refusal:
                acc.refusal.append(refusal)
            for call in _list(_get(delta, "tool_calls")) or ():
                call_index = _int(_get(call, "index"))
                if call_index is None:
                    call_index = len(acc.tool_calls)
                slot = acc.tool_calls.setdefault(call_index, {"id": None, "name": None, "args": []})
                slot["id"] = slot["id"] or _str(_get(call, "id"))
                function = _get(call, "function")
                slot["name"] = slot["name"] or _str(_get(function, "name"))
                arguments = _str(_get(function, "arguments"))
                if arguments:
                    slot["args"].append(arguments)
            function_call = _get(delta, "function_call")
            if function_call is not None:
                slot = acc.tool_calls.setdefault(-1, {"id": None, "name": None, "args": []})
                slot["name"] = slot["name"] or _str(_get(function_call, "name"))
                arguments = _str(_get(function_call, "arguments"))
                if arguments:
                    slot["args"].append(arguments)

    def _chat_result(self) -> ParsedResponse:
        res = ParsedResponse(provider="openai", operation=self.kind, response_model=self.model, response_id=self.id)
        messages = []
        for index in sorted(self.choices):
            acc = self.choices[index]
            if acc.finish_reason:
                res.finish_reasons.append(acc.finish_reason)
            text = "".join(acc.text)
            parts: list[dict] = [_text_part(text)] if acc.text else []
            if acc.refusal:
                parts.append({"type": "refusal", "content": "".join(acc.refusal)})
            for call_index in sorted(acc.tool_calls):
                slot = acc.tool_calls[call_index]
                parts.append(_tool_call_part(slot["id"], slot["name"], "".join(slot["args"])))
            messages.append(
                {"role": acc.role or "assistant", "parts": parts, "finish_reason": map_finish_reason(acc.finish_reason)}
            )
            if res.output_text is None:
                res.output_text = text if acc.text else None
                res.token_logprobs = acc.logprobs or None
        res.output_messages = messages
        _apply_openai_usage(res, self.usage)
        return res

    # -- OpenAI Responses --------------------------------------------------------------------------------------------

    def _responses(self, event: Any, kind: str) -> None:
        if kind in _RESPONSES_TERMINAL:
            self.final_response = _get(event, "response")
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            self.started_response = _get(event, "response") or self.started_response
        elif kind == "response.output_text.delta":
            delta = _str(_get(event, "delta"))
            if delta:
                self.text_deltas.append(delta)
            self.delta_logprobs.extend(_logprobs(_get(event, "logprobs")) or ())
        elif kind == "response.output_item.done":
            index = _int(_get(event, "output_index"))
            self.done_items[len(self.done_items) if index is None else index] = _get(event, "item")

    def _responses_result(self) -> ParsedResponse:
        if self.final_response is not None:
            res = _parse_responses_api(self.final_response)
        else:  # stream cut short: rebuild what we can
            started = self.started_response
            res = _parse_responses_api({"output": [self.done_items[i] for i in sorted(self.done_items)]})
            res.response_model = _str(_get(started, "model"))
            res.response_id = _str(_get(started, "id"))
            res.finish_reasons = []
            if not self.done_items and self.text_deltas:
                res.output_messages = [
                    {"role": "assistant", "parts": [_text_part("".join(self.text_deltas))], "finish_reason": "error"}
                ]
        if res.output_text is None and self.text_deltas:
            res.output_text = "".join(self.text_deltas)
        if res.token_logprobs is None and self.delta_logprobs:
            res.token_logprobs = list(self.delta_logprobs)
        return res

    # -- Anthropic ---------------------------------------------------------------------------------------------------

    def _anthropic(self, event: Any, kind: str) -> None:
        if kind == "message_start":
            message = _get(event, "message")
            self.id = _str(_get(message, "id")) or self.id
            self.model = _str(_get(message, "model")) or self.model
            self.start_usage = _get(message, "usage")
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            index = _int(_get(event, "index"))
            if index is None:
                index = len(self.blocks)
            block_type = _str(_get(block, "type")) or ""
            slot: dict[str, Any] = {"type": block_type, "block": block, "text": [], "json": [], "thinking": []}
            initial = _str(_get(block, "text"))
            if initial:
                slot["text"].append(initial)
            self.blocks[index] = slot
        elif kind == "content_block_delta":
            index = _int(_get(event, "index")) or 0
            delta = _get(event, "delta")
            delta_type = _str(_get(delta, "type"))
            slot = self.blocks.setdefault(
                index, {"type": "text", "block": None, "text": [], "json": [], "thinking": []}
            )
            if delta_type == "text_delta":
                self.raw_text_seen = True
                text = _str(_get(delta, "text"))
                if text:
                    slot["text"].append(text)
            elif delta_type == "input_json_delta":
                partial = _str(_get(delta, "partial_json"))
                if partial:
                    slot["json"].append(partial)
            elif delta_type == "thinking_delta":
                thinking = _str(_get(delta, "thinking"))
                if thinking:
                    slot["thinking"].append(thinking)
        elif kind == "message_delta":
            reason = _str(_get(_get(event, "delta"), "stop_reason"))
            if reason:
                self.stop_reason = reason
            usage = _get(event, "usage")
            if usage is not None:
                self.delta_usage = usage
        elif kind == "message_stop":
            message = _get(event, "message")  # present on the SDK MessageStream's event: the full snapshot
            if message is not None:
                self.final_message = message
        elif kind == "text":  # SDK MessageStream TextEvent, duplicates the raw text_delta when both are present
            text = _str(_get(event, "text"))
            if text:
                self.sdk_text.append(text)

    def _anthropic_result(self) -> ParsedResponse:
        if self.final_message is not None:
            res = _parse_anthropic(self.final_message)
            if res.output_text is None and self.sdk_text:
                res.output_text = "".join(self.sdk_text)
            return res
        res = ParsedResponse(provider="anthropic", operation="chat", response_model=self.model, response_id=self.id)
        parts: list[dict] = []
        texts: list[str] = []
        for index in sorted(self.blocks):
            slot = self.blocks[index]
            block_type = slot["type"]
            block = slot["block"]
            if block_type == "text":
                text = "".join(slot["text"])
                texts.append(text)
                parts.append(_text_part(text))
            elif block_type in ("tool_use", "server_tool_use"):
                raw_json = "".join(slot["json"])
                arguments = _json_or_raw(raw_json) if raw_json else _get(block, "input")
                if block_type == "tool_use":
                    parts.append(_tool_call_part(_get(block, "id"), _get(block, "name"), arguments))
                else:
                    parts.append(_content_part(block) or {"type": "server_tool_call"})
            elif block_type == "thinking":
                parts.append({"type": "reasoning", "content": "".join(slot["thinking"])})
            elif block is not None:
                part = _content_part(block)
                if part is not None:
                    parts.append(part)
        if not self.raw_text_seen and self.sdk_text:
            texts = ["".join(self.sdk_text)]
            if not any(p.get("type") == "text" for p in parts):
                parts.insert(0, _text_part(texts[0]))
        if self.stop_reason:
            res.finish_reasons.append(self.stop_reason)
        res.output_messages = [
            {"role": "assistant", "parts": parts, "finish_reason": map_finish_reason(self.stop_reason)}
        ]
        res.output_text = "".join(texts) if texts else None

        def pick(key: str) -> Any:
            # message_delta usage is cumulative and, when a field is set, newer than message_start's.
            value = _get(self.delta_usage, key)
            return value if value is not None else _get(self.start_usage, key)

        if self.start_usage is not None or self.delta_usage is not None:
            _apply_anthropic_usage(
                res,
                pick("input_tokens"),
                pick("output_tokens"),
                pick("cache_read_input_tokens"),
                pick("cache_creation_input_tokens"),
                _get(pick("output_tokens_details"), "thinking_tokens"),
            )
        return res

    # -- result ------------------------------------------------------------------------------------------------------

    def result(self) -> ParsedResponse | None:
        if self.kind in ("chat", "text_completion"):
            return self._chat_result()
        if self.kind == "responses":
            return self._responses_result()
        if self.kind == "anthropic":
            return self._anthropic_result()
        if self.plain:
            return ParsedResponse(output_text="".join(self.plain))
        return None


def parse_stream(chunks: Sequence[object]) -> ParsedResponse | None:
    """Rebuild a response from the chunks/events a streaming call yielded.

    Handles OpenAI ``ChatCompletionChunk`` (content and tool-call deltas, usage on the final chunk when
    ``stream_options={"include_usage": True}``), OpenAI Responses streaming events, Anthropic raw stream events
    and the Anthropic SDK's ``MessageStream`` events, and plain strings (concatenated). Unknown items are ignored.

    Args:
        chunks: Items in the order the stream yielded them.

    Returns:
        A ``ParsedResponse``, or ``None`` when nothing was recognised. Never raises.
    """
    if isinstance(chunks, str):
        return ParsedResponse(output_text=chunks)
    acc = _StreamAcc()
    try:
        iterator = iter(chunks)  # type: ignore[call-overload]
    except TypeError:
        return None
    try:
        for chunk in iterator:
            try:
                acc.feed(chunk)
            except Exception:
                continue
        return acc.result()
    except Exception:
        return None
