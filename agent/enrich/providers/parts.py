"""Finish reasons and content parts (text, tool calls, media), shared by requests and responses of every provider.

Shapes follow the GenAI semantic conventions' JSON schemas for ``gen_ai.input.messages`` /
``gen_ai.output.messages`` (semantic-conventions v1.41.0).
"""

from __future__ import annotations

from typing import Any

from .access import (
    _get,
    _get_str,
    _json_or_raw,
    _list,
    _str,
)

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


def _openai_tool_call(call: Any) -> dict:
    kind = _get_str(call, "type")
    if kind == "custom":
        custom = _get(call, "custom")
        return _tool_call_part(_get(call, "id"), _get(custom, "name"), _get(custom, "input"))
    function = _get(call, "function")
    return _tool_call_part(_get(call, "id"), _get(function, "name"), _get(function, "arguments"))
