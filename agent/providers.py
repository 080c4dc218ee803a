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
from functools import partial
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
# Per-type access strategy (ABC isinstance checks are slow per call): one of the ints above, or, for pydantic v2
# models, a per-class ``{key: needs_plain_getattr}`` table (see ``_get``).
_ACCESS_BY_TYPE: dict[type, int | dict[str, bool]] = {}
_MISSING: Any = object()


def _is_pydantic_v2(cls: type) -> bool:
    """Whether ``cls`` is a pydantic v2 model class that keeps pydantic's own attribute lookup."""
    for klass in cls.__mro__:
        if klass.__name__ == "BaseModel" and klass.__module__ == "pydantic.main":
            if "__pydantic_extra__" not in getattr(klass, "__slots__", ()):
                return False  # pydantic v1 (or something else entirely)
            getattr_hook = klass.__dict__.get("__getattr__")
            return (
                getattr_hook is not None
                and getattr(cls, "__getattr__", None) is getattr_hook  # not customised by a subclass
                and cls.__getattribute__ is object.__getattribute__
            )
    return False


def _access(cls: type) -> int | dict[str, bool]:
    kind = _ACCESS_BY_TYPE.get(cls)
    if kind is None:
        kind = _SCALAR if issubclass(cls, _SCALARS) else _MAPPING if issubclass(cls, Mapping) else _ATTR
        if kind == _ATTR:
            try:
                if _is_pydantic_v2(cls):
                    kind = {}
            except Exception:
                kind = _ATTR
        if len(_ACCESS_BY_TYPE) < 4096:
            _ACCESS_BY_TYPE[cls] = kind
    return kind


def _pydantic_plain(cls: type, key: str) -> bool:
    """Whether ``getattr`` must resolve ``key`` (a class attribute, descriptor or private attribute of ``cls``)."""
    for klass in cls.__mro__:
        if key in klass.__dict__:
            return True
    private = getattr(cls, "__private_attributes__", None)
    return bool(private) and key in private  # type: ignore[operator]


def _get(obj: Any, key: str) -> Any:
    """Return ``obj[key]`` for mappings, else ``obj.key``; ``None`` when absent or unreadable."""
    cls = type(obj)
    if cls is dict:
        return obj.get(key)
    if obj is None:
        return None
    kind = _ACCESS_BY_TYPE.get(cls)
    if kind is None:
        kind = _access(cls)
    try:
        if type(kind) is dict:
            # A pydantic v2 model (every SDK object). ``getattr`` on a missing key costs an AttributeError raised
            # by pydantic's ``__getattr__`` (microseconds). A key that is neither on the class nor private resolves
            # exactly as ``object.__getattribute__`` then pydantic's ``__getattr__`` would: the instance
            # ``__dict__`` (declared fields), then ``__pydantic_extra__`` (undeclared ones, ``extra="allow"``),
            # else missing.
            plain = kind.get(key)
            if plain is False:
                value = obj.__dict__.get(key, _MISSING)
                if value is _MISSING:
                    extra = obj.__pydantic_extra__
                    return extra.get(key) if extra else None
                return value
            if plain is None and len(kind) < 256:
                kind[key] = _pydantic_plain(cls, key)
            return getattr(obj, key, None)
        if kind == _ATTR:
            return getattr(obj, key, None)
        if kind == _MAPPING:
            return obj.get(key)
    except Exception:
        return None
    return None


def _getter(obj: Any) -> Any:
    """``lambda key: _get(obj, key)``, cheaper for dicts (their bound ``get``)."""
    return obj.get if type(obj) is dict else partial(_get, obj)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _get_str(obj: Any, key: str) -> str | None:
    """``_str(_get(obj, key))`` in one call."""
    value = obj.get(key) if type(obj) is dict else _get(obj, key)
    return value if value is None or type(value) is str or isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    cls = type(value)
    if cls is float:
        return value
    if cls is int:
        return float(value)
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
    texts = [t for t in (_get_str(i, "text") for i in items) if t is not None]
    if len(texts) == len(items):
        return "".join(texts)
    return [_content_part(i) for i in items]


_TEXT_KINDS = frozenset({"text", "input_text", "output_text"})


def _content_part(block: Any) -> dict | None:
    """Convert one provider content block (OpenAI chat/Responses or Anthropic) to a semconv part."""
    if type(block) is dict:  # fast path: a plain text block
        kind = block.get("type")
        if type(kind) is str and kind in _TEXT_KINDS:
            text = block.get("text")
            return {"type": "text", "content": text if type(text) is str else _str(text) or ""}
    elif isinstance(block, str):
        return _text_part(block)
    kind = _get_str(block, "type")
    if kind is None:
        text = _get_str(block, "text")
        return _text_part(text) if text is not None else None
    if kind in _TEXT_KINDS:
        return _text_part(_get_str(block, "text") or "")
    if kind == "refusal":
        return {"type": "refusal", "content": _get_str(block, "refusal") or ""}
    if kind == "image_url":  # OpenAI chat
        image = _get(block, "image_url")
        url = _str(image) or _get_str(image, "url")
        return _data_url_part(url, "image") if url else {"type": "uri", "modality": "image", "uri": ""}
    if kind == "input_image":  # OpenAI Responses
        url = _get_str(block, "image_url")
        if url:
            return _data_url_part(url, "image")
        return {"type": "file", "modality": "image", "file_id": _get_str(block, "file_id") or ""}
    if kind == "input_audio":
        audio = _get(block, "input_audio")
        fmt = _get_str(audio, "format")
        part: dict[str, Any] = {"type": "blob", "modality": "audio", "content": _get_str(audio, "data") or ""}
        if fmt:
            part["mime_type"] = f"audio/{fmt}"
        return part
    if kind in ("file", "input_file"):
        inner = _get(block, "file") if kind == "file" else block
        file_id = _get_str(inner, "file_id")
        if file_id:
            return {"type": "file", "file_id": file_id}
        url = _get_str(inner, "file_url")
        if url:
            return {"type": "uri", "uri": url}
        data = _get_str(inner, "file_data")
        if data:
            part = _data_url_part(data, "document") if data.startswith("data:") else {"type": "blob", "content": data}
            part.pop("modality", None)
            return part
        return {"type": "file"}
    if kind in ("image", "document"):  # Anthropic
        source = _get(block, "source")
        src_type = _get_str(source, "type")
        modality = "image" if kind == "image" else "document"
        if src_type == "base64":
            part = {"type": "blob", "modality": modality, "content": _get_str(source, "data") or ""}
            mime = _get_str(source, "media_type")
            if mime:
                part["mime_type"] = mime
            return part
        if src_type == "url":
            return {"type": "uri", "modality": modality, "uri": _get_str(source, "url") or ""}
        if src_type == "file":
            return {"type": "file", "modality": modality, "file_id": _get_str(source, "file_id") or ""}
        if src_type == "text":
            return _text_part(_get_str(source, "data") or "")
        return {"type": modality}
    if kind == "tool_use":  # Anthropic assistant tool call
        return _tool_call_part(_get(block, "id"), _get(block, "name"), _get(block, "input"))
    if kind == "tool_result":  # Anthropic tool result sent back by the user
        return {
            "type": "tool_call_response",
            "id": _get_str(block, "tool_use_id"),
            "response": _flatten_text(_get(block, "content")),
        }
    if kind == "function_call":  # OpenAI Responses item
        return _tool_call_part(
            _get(block, "call_id") or _get(block, "id"), _get(block, "name"), _get(block, "arguments")
        )
    if kind == "custom_tool_call":
        return _tool_call_part(_get(block, "call_id") or _get(block, "id"), _get(block, "name"), _get(block, "input"))
    if kind in ("function_call_output", "custom_tool_call_output"):
        return {"type": "tool_call_response", "id": _get_str(block, "call_id"), "response": _get(block, "output")}
    if kind == "thinking":
        return {"type": "reasoning", "content": _get_str(block, "thinking") or ""}
    if kind == "reasoning":  # OpenAI Responses reasoning item: only the summary is readable
        summary = _list(_get(block, "summary")) or []
        texts = [t for t in (_get_str(s, "text") for s in summary) if t]
        return {"type": "reasoning", "content": "\n".join(texts)}
    if kind == "server_tool_use":
        return {"type": "server_tool_call", "id": _get_str(block, "id"), "name": _get_str(block, "name") or ""}
    if kind.endswith("_tool_result"):
        return {"type": "server_tool_call_response", "id": _get_str(block, "tool_use_id"), "name": kind}
    if kind.endswith("_call"):  # OpenAI Responses hosted tools: web_search_call, file_search_call, mcp_call, ...
        name = _get_str(block, "name") or kind[: -len("_call")]
        return {"type": "server_tool_call", "id": _get_str(block, "id"), "name": name}
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
        kind = _get_str(fmt, "type")
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
    role = _get_str(msg, "role")
    item_type = _get_str(msg, "type")
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
        parts: list[dict] = [{"type": "tool_call_response", "id": _get_str(msg, "tool_call_id"), "response": response}]
    else:
        parts = _content_parts(content)
    for call in _list(_get(msg, "tool_calls")) or ():
        parts.append(_openai_tool_call(call))
    function_call = _get(msg, "function_call")
    if function_call is not None:
        parts.append(_tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
    out: dict[str, Any] = {"role": role, "parts": parts}
    name = _get_str(msg, "name")
    if name:
        out["name"] = name
    return out


def _messages_to_semconv(messages: Any) -> list[dict] | None:
    if type(messages) is list:
        items = messages
    elif isinstance(messages, str):
        return [{"role": "user", "parts": [_text_part(messages)]}]
    else:
        items = _list(messages)
        if items is None:
            return None
    out = []
    role_map = _ROLE_MAP
    for msg in items:
        # Fast path for the overwhelmingly common {"role": "...", "content": "..."}; same result as the general path.
        if type(msg) is dict and len(msg) == 2:
            role = msg.get("role")
            content = msg.get("content")
            if type(role) is str and type(content) is str:
                role = role_map.get(role, role)
                if role != "tool":
                    out.append({"role": role, "parts": [{"type": "text", "content": content}]})
                    continue
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
    if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        return req
    try:
        _fill_request(req, kwargs)
    except Exception:  # defensive: a half-filled record beats an exception inside the user's app
        pass
    return req


# Request parsing is a fixed sequence of steps, each reading a few kwargs. A plain dict runs only the steps whose
# keys it holds (a step whose keys are all absent changes nothing), in the same order, so a step that raises leaves
# the same half-filled record either way. Other mappings run every step.

_PROVIDER_BY_MODEL: dict[str, str | None] = {}


def _provider_for(model: str | None) -> str | None:
    if type(model) is not str:
        return _guess_provider(model)
    provider = _PROVIDER_BY_MODEL.get(model, _MISSING)
    if provider is _MISSING:
        provider = _guess_provider(model)
        if len(_PROVIDER_BY_MODEL) < 4096:
            _PROVIDER_BY_MODEL[model] = provider
    return provider


def _req_input(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    messages = kw.get("messages")
    prompt = kw.get("prompt")
    inp = kw.get("input")
    if type(messages) is list or _given(messages):
        req.operation = "chat"
        req.input_messages = _messages_to_semconv(messages)
    elif _given(prompt):
        req.operation = "text_completion"
        if isinstance(prompt, str):
            req.input_messages = [{"role": "user", "parts": [_text_part(prompt)]}]
        elif _list(prompt) is not None and all(isinstance(p, str) for p in prompt):  # type: ignore[union-attr]
            req.input_messages = [{"role": "user", "parts": [_text_part(p) for p in prompt]}]  # type: ignore[union-attr]
    elif _given(inp):
        model = _str(kw.get("model"))
        is_embedding = (
            "embed" in (model or "").lower() or _given(kw.get("encoding_format")) or _given(kw.get("dimensions"))
        )
        if is_embedding:
            req.operation = "embeddings"
        else:
            req.operation = "chat"  # OpenAI Responses API
            req.input_messages = _messages_to_semconv(inp)


_MAX_TOKENS_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample")


def _req_max_tokens(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    for key in _MAX_TOKENS_KEYS:
        value = _int(kw.get(key))
        if value is not None:
            req.max_tokens = value
            break


def _req_top_p(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.top_p = _float(kw.get("top_p"))


def _req_top_k(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.top_k = _float(kw.get("top_k"))


def _req_frequency_penalty(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.frequency_penalty = _float(kw.get("frequency_penalty"))


def _req_presence_penalty(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.presence_penalty = _float(kw.get("presence_penalty"))


def _req_stop(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    stop = kw.get("stop")
    if not _given(stop):
        stop = kw.get("stop_sequences")
    if isinstance(stop, str):
        req.stop_sequences = [stop]
    elif _list(stop) is not None:
        req.stop_sequences = [s for s in stop if isinstance(s, str)]  # type: ignore[union-attr]


def _req_seed(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.seed = _int(kw.get("seed"))


def _req_n(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.choice_count = _int(kw.get("n"))


def _req_stream(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.stream = _bool(kw.get("stream"))


def _req_output_type(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    req.output_type = (
        _output_type(kw.get("response_format"))
        or _output_type(_get(kw.get("text"), "format"))
        or _output_type(_get(kw.get("output_config"), "format"))
        or _output_type(kw.get("output_format"))
    )


def _req_system(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    system = kw.get("system")
    instructions = kw.get("instructions")
    if _given(system):
        req.system_instructions = _instructions(system)
    elif _given(instructions):
        req.system_instructions = _instructions(instructions)


def _req_extra_scalar(key: str) -> Any:
    def step(req: ParsedRequest, kw: Mapping[str, object]) -> None:
        value = kw.get(key)
        if _given(value) and _is_scalar(value):
            req.extra_params[key] = value

    return step


def _req_reasoning(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    reasoning = kw.get("reasoning")
    for key in ("effort", "summary"):
        value = _get(reasoning, key)
        if _is_scalar(value):
            req.extra_params[f"reasoning_{key}"] = value


def _req_verbosity(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    verbosity = _get(kw.get("text"), "verbosity")
    if _is_scalar(verbosity):
        req.extra_params["verbosity"] = verbosity


def _req_effort(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    effort = _get(kw.get("output_config"), "effort")
    if _is_scalar(effort):
        req.extra_params["effort"] = effort


def _req_thinking(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    thinking = kw.get("thinking")
    for key in ("type", "budget_tokens"):
        value = _get(thinking, key)
        if _is_scalar(value):
            req.extra_params[f"thinking_{key}"] = value


def _req_tool_choice(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    tool_choice = kw.get("tool_choice")
    if isinstance(tool_choice, str):
        req.extra_params["tool_choice"] = tool_choice
    elif _get_str(tool_choice, "type"):
        req.extra_params["tool_choice"] = _get(tool_choice, "type")


def _req_conversation(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    conversation = kw.get("conversation")
    conversation_id = _str(conversation) or _get_str(conversation, "id")
    if conversation_id:
        req.extra_params["conversation_id"] = conversation_id


# (keys the step reads, step), in the order the steps must run. The first three steps (model, input messages,
# temperature) are inlined in ``_fill_request``.
_REQUEST_STEPS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("model",), None),
    (("messages", "prompt", "input"), _req_input),
    (("temperature",), None),
    (_MAX_TOKENS_KEYS, _req_max_tokens),
    (("top_p",), _req_top_p),
    (("top_k",), _req_top_k),
    (("frequency_penalty",), _req_frequency_penalty),
    (("presence_penalty",), _req_presence_penalty),
    (("stop", "stop_sequences"), _req_stop),
    (("seed",), _req_seed),
    (("n",), _req_n),
    (("stream",), _req_stream),
    (("response_format", "text", "output_config", "output_format"), _req_output_type),
    (("system", "instructions"), _req_system),
    *(((key,), _req_extra_scalar(key)) for key in _EXTRA_SCALAR_PARAMS),
    (("reasoning",), _req_reasoning),
    (("text",), _req_verbosity),
    (("output_config",), _req_effort),
    (("thinking",), _req_thinking),
    (("tool_choice",), _req_tool_choice),
    (("conversation",), _req_conversation),
)
_STEP_BY_BIT: dict[int, Any] = {1 << i: step for i, (_, step) in enumerate(_REQUEST_STEPS)}
_ALL_STEPS = (1 << len(_REQUEST_STEPS)) - 1
_STEP_BITS_BY_KEY: dict[str, int] = {}
for _i, (_keys, _) in enumerate(_REQUEST_STEPS):
    for _key in _keys:
        _STEP_BITS_BY_KEY[_key] = _STEP_BITS_BY_KEY.get(_key, 0) | 1 << _i
del _i, _keys, _key


def _fill_request(req: ParsedRequest, kw: Mapping[str, object]) -> None:
    mask = _ALL_STEPS
    if type(kw) is dict:
        bits = _STEP_BITS_BY_KEY.get
        try:
            mask = 0
            for key in kw:
                mask |= bits(key, 0)
        except Exception:  # odd keys (unhashable-by-subclass, mutated while iterating): run every step
            mask = _ALL_STEPS
    # The first three steps (the common model / messages / temperature), inlined.
    if mask & 1:
        model = kw.get("model")
        if type(model) is not str:
            model = _str(model)
        req.model = model
        req.provider = _provider_for(model)
    if mask & 2:
        messages = kw.get("messages")
        if type(messages) is list:  # what _req_input does for a list of messages
            req.operation = "chat"
            req.input_messages = _messages_to_semconv(messages)
        else:
            _req_input(req, kw)
    if mask & 4:
        temperature = kw.get("temperature")
        req.temperature = temperature if type(temperature) is float else _float(temperature)
    mask &= ~7
    steps = _STEP_BY_BIT
    while mask:
        bit = mask & -mask
        steps[bit](req, kw)
        mask ^= bit


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
    if type(obj) is dict:
        object_type = obj.get("object")
        if type(object_type) is str and object_type == "chat.completion":
            return _parse_chat_dict(obj) or _parse_chat(obj)
    elif obj is None:
        return None
    if isinstance(obj, str):
        return ParsedResponse(output_text=obj)
    if isinstance(obj, _SCALARS):
        return None
    object_type = _get_str(obj, "object")
    kind = _get_str(obj, "type")
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


_NO_USAGE = (None, None, None, None, None)


def _openai_usage(usage: Any) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """Chat/completions usage as (input, output, cache read, cache creation, reasoning) tokens.

    prompt_tokens already include cached tokens, completion_tokens include reasoning.
    """
    if usage is None:
        return _NO_USAGE
    get = _getter(usage)
    prompt = get("prompt_tokens")
    if type(prompt) is not int:
        prompt = _int(prompt)
    completion = get("completion_tokens")
    if type(completion) is not int:
        completion = _int(completion)
    if prompt is None and completion is None:  # some OpenAI-compatible servers use the newer names
        prompt = _int(get("input_tokens"))
        completion = _int(get("output_tokens"))
    details = get("prompt_tokens_details")
    if details is None:
        cache_read = cache_creation = None
    else:
        get_detail = _getter(details)
        cache_read = get_detail("cached_tokens")
        if type(cache_read) is not int:
            cache_read = _int(cache_read)
        cache_creation = get_detail("cache_write_tokens")
        if cache_creation is not None:
            cache_creation = _int(cache_creation)
    details = get("completion_tokens_details")
    if details is None:
        reasoning = None
    else:
        reasoning = _getter(details)("reasoning_tokens")
        if type(reasoning) is not int:
            reasoning = _int(reasoning)
    return prompt, completion, cache_read, cache_creation, reasoning


def _apply_openai_usage(res: ParsedResponse, usage: Any) -> None:
    if usage is None:
        return
    (
        res.input_tokens,
        res.output_tokens,
        res.cache_read_input_tokens,
        res.cache_creation_input_tokens,
        res.reasoning_output_tokens,
    ) = _openai_usage(usage)


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
    kind = _get_str(call, "type")
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
    res = ParsedResponse("openai", "chat", _get_str(obj, "model"), _get_str(obj, "id"))
    messages = []
    for i, choice in enumerate(_list(_get(obj, "choices")) or ()):
        raw = _get_str(choice, "finish_reason")
        if raw:
            res.finish_reasons.append(raw)
        message = _get(choice, "message")
        content = _get(message, "content")
        parts = _content_parts(content)
        refusal = _get_str(message, "refusal")
        if refusal:
            parts.append({"type": "refusal", "content": refusal})
        for call in _list(_get(message, "tool_calls")) or ():
            parts.append(_openai_tool_call(call))
        function_call = _get(message, "function_call")
        if function_call is not None:
            parts.append(_tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
        messages.append(
            {
                "role": _get_str(message, "role") or "assistant",
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


def _parse_chat_dict(obj: dict) -> ParsedResponse | None:
    """``_parse_chat`` for the common plain-dict completion: one text choice, no refusal, tool calls or logprobs.

    Returns ``None`` (caller falls back to ``_parse_chat``) for anything else; same result as ``_parse_chat``.
    """
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("logprobs") is not None:
        return None
    message = choice.get("message")
    if type(message) is not dict:
        return None
    content = message.get("content")
    role = message.get("role")
    if type(content) is not str or (role is not None and type(role) is not str):
        return None
    refusal = message.get("refusal")
    if refusal is not None and (type(refusal) is not str or refusal):
        return None
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and (type(tool_calls) is not list or tool_calls):
        return None
    if message.get("function_call") is not None:
        return None
    raw = choice.get("finish_reason")
    if raw is None:
        finish_reasons: list[str] = []
        mapped = "error"
    elif type(raw) is str:
        finish_reasons = [raw] if raw else []
        mapped = _FINISH_MAP.get(raw) or map_finish_reason(raw)
    else:
        return None
    model = obj.get("model")
    response_id = obj.get("id")
    input_tokens, output_tokens, cache_read, cache_creation, reasoning = _openai_usage(obj.get("usage"))
    return ParsedResponse(  # positional: keyword arguments make the dataclass __init__ about twice as slow
        "openai",
        "chat",
        model if type(model) is str else _str(model),
        response_id if type(response_id) is str else _str(response_id),
        finish_reasons,
        input_tokens,
        output_tokens,
        cache_read,
        cache_creation,
        reasoning,
        content,
        [{"role": role or "assistant", "parts": [{"type": "text", "content": content}], "finish_reason": mapped}],
        None,
    )


def _parse_completion(obj: Any) -> ParsedResponse:
    res = ParsedResponse("openai", "text_completion", _get_str(obj, "model"), _get_str(obj, "id"))
    messages = []
    for i, choice in enumerate(_list(_get(obj, "choices")) or ()):
        raw = _get_str(choice, "finish_reason")
        if raw:
            res.finish_reasons.append(raw)
        text = _get_str(choice, "text")
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
    res = ParsedResponse(provider=None, operation="embeddings", response_model=_get_str(obj, "model"))
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
    res = ParsedResponse("openai", "chat", _get_str(obj, "model"), _get_str(obj, "id"))
    parts: list[dict] = []
    texts: list[str] = []
    logprobs: list[float] = []
    has_tool_call = False
    for item in _list(_get(obj, "output")) or ():
        kind = _get_str(item, "type")
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
    status = _get_str(obj, "status")
    reason = _get_str(_get(obj, "incomplete_details"), "reason")
    raw, mapped = _responses_finish(status, reason, has_tool_call)
    if raw:
        res.finish_reasons.append(raw)
    res.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": mapped}]
    res.output_text = "".join(texts) if texts else None
    res.token_logprobs = logprobs or None
    _apply_responses_usage(res, _get(obj, "usage"))
    return res


def _parse_anthropic(obj: Any) -> ParsedResponse:
    res = ParsedResponse("anthropic", "chat", _get_str(obj, "model"), _get_str(obj, "id"))
    parts = _content_parts(_get(obj, "content"))
    texts = [p["content"] for p in parts if p.get("type") == "text"]
    raw = _get_str(obj, "stop_reason")
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
        if type(chunk) is not dict:
            if isinstance(chunk, str):
                self.plain.append(chunk)
                return
            if chunk is None or isinstance(chunk, _SCALARS):
                return
        kind = _get_str(chunk, "type")
        if kind == "chunk":  # openai.lib ChatCompletionStreamManager's ChunkEvent wraps the raw chunk
            chunk = _get(chunk, "chunk")
            kind = None
        object_type = _get_str(chunk, "object")
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
        # Hot loop (once per streamed token): ``_getter`` is a dict's own ``get``, and ``None`` (what most fields of
        # most chunks hold) skips the ``_str`` call.
        get = _getter(chunk)
        self.id = self.id or _str(get("id"))
        self.model = self.model or _str(get("model"))
        usage = get("usage")
        if usage is not None:
            self.usage = usage
        for choice in _list(get("choices")) or ():
            cget = _getter(choice)
            index = _int(cget("index")) or 0
            acc = self.choices.get(index)
            if acc is None:
                acc = self.choices[index] = _ChatChoiceAcc()
            finish = cget("finish_reason")
            if finish is not None:
                finish = _str(finish)
                if finish:
                    acc.finish_reason = finish
            logprobs = cget("logprobs")
            if logprobs is not None:
                entries = _list(_get(logprobs, "content"))
                if entries:
                    acc.logprobs.extend(_logprobs(entries) or ())
            text = cget("text")  # legacy completions stream
            if text is not None:
                text = _str(text)
                if text:
                    acc.text.append(text)
            delta = cget("delta")
            if delta is None:
                continue
            dget = _getter(delta)
            acc.role = acc.role or _str(dget("role"))
            content = dget("content")
            if content is not None:
                content = _str(content)
                if content:
                    acc.text.append(content)
            refusal = dget("refusal")
            if refusal is not None:
                refusal = _str(refusal)
                if refusal:
                    acc.refusal.append(refusal)
            tool_calls = dget("tool_calls")
            if tool_calls is not None:
                for call in _list(tool_calls) or ():
                    call_index = _int(_get(call, "index"))
                    if call_index is None:
                        call_index = len(acc.tool_calls)
                    slot = acc.tool_calls.setdefault(call_index, {"id": None, "name": None, "args": []})
                    slot["id"] = slot["id"] or _get_str(call, "id")
                    function = _get(call, "function")
                    slot["name"] = slot["name"] or _get_str(function, "name")
                    arguments = _get_str(function, "arguments")
                    if arguments:
                        slot["args"].append(arguments)
            function_call = dget("function_call")
            if function_call is not None:
                slot = acc.tool_calls.setdefault(-1, {"id": None, "name": None, "args": []})
                slot["name"] = slot["name"] or _get_str(function_call, "name")
                arguments = _get_str(function_call, "arguments")
                if arguments:
                    slot["args"].append(arguments)

    def _chat_result(self) -> ParsedResponse:
        res = ParsedResponse("openai", self.kind, self.model, self.id)
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
            delta = _get_str(event, "delta")
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
            res.response_model = _get_str(started, "model")
            res.response_id = _get_str(started, "id")
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
            self.id = _get_str(message, "id") or self.id
            self.model = _get_str(message, "model") or self.model
            self.start_usage = _get(message, "usage")
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            index = _int(_get(event, "index"))
            if index is None:
                index = len(self.blocks)
            block_type = _get_str(block, "type") or ""
            slot: dict[str, Any] = {"type": block_type, "block": block, "text": [], "json": [], "thinking": []}
            initial = _get_str(block, "text")
            if initial:
                slot["text"].append(initial)
            self.blocks[index] = slot
        elif kind == "content_block_delta":
            index = _int(_get(event, "index")) or 0
            delta = _get(event, "delta")
            delta_type = _get_str(delta, "type")
            slot = self.blocks.setdefault(
                index, {"type": "text", "block": None, "text": [], "json": [], "thinking": []}
            )
            if delta_type == "text_delta":
                self.raw_text_seen = True
                text = _get_str(delta, "text")
                if text:
                    slot["text"].append(text)
            elif delta_type == "input_json_delta":
                partial = _get_str(delta, "partial_json")
                if partial:
                    slot["json"].append(partial)
            elif delta_type == "thinking_delta":
                thinking = _get_str(delta, "thinking")
                if thinking:
                    slot["thinking"].append(thinking)
        elif kind == "message_delta":
            reason = _get_str(_get(event, "delta"), "stop_reason")
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
            text = _get_str(event, "text")
            if text:
                self.sdk_text.append(text)

    def _anthropic_result(self) -> ParsedResponse:
        if self.final_message is not None:
            res = _parse_anthropic(self.final_message)
            if res.output_text is None and self.sdk_text:
                res.output_text = "".join(self.sdk_text)
            return res
        res = ParsedResponse("anthropic", "chat", self.model, self.id)
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
