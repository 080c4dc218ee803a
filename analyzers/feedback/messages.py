"""Captured messages (GenAI semantic-convention JSON, as ``llm_calls`` stores them) as OpenAI chat messages.

``InputMessages`` / ``OutputMessages`` hold ``[{"role": ..., "parts": [...]}]`` with text, tool-call,
tool-call-response, media and reasoning parts. OpenAI's chat fine-tuning format wants ``{"role",
"content"}`` messages, ``tool_calls`` on assistant messages and ``tool`` messages with a
``tool_call_id``. Text parts become the content (a list of text parts when there are several); images
given by URL or inline data become ``image_url`` parts; reasoning is dropped (it is not part of the
conversation the model is trained to continue). Anything else (audio, files) makes the conversion fail
with :class:`Unsupported`, which the caller counts.
"""

from __future__ import annotations

import json
from typing import Any


class Unsupported(ValueError):
    """A message this converter cannot express in OpenAI's chat format; the message says what."""


ROLES = frozenset({"system", "user", "assistant", "tool"})


def parse(text: str) -> list[dict[str, Any]]:
    """Stored messages JSON as a list of message dicts; [] for an empty or unreadable value."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _text_of(part: dict[str, Any]) -> str:
    content = part.get("content")
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _media(part: dict[str, Any]) -> dict[str, Any]:
    modality = part.get("modality")
    if modality != "image":
        raise Unsupported(f"{modality or 'unknown'} content ({part.get('type')} part)")
    if part.get("type") == "uri" and part.get("uri"):
        return {"type": "image_url", "image_url": {"url": part["uri"]}}
    if part.get("type") == "blob" and part.get("content"):
        mime = part.get("mime_type") or "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{part['content']}"}}
    raise Unsupported(f"an image given as {part.get('type')} (a file id or an empty part)")


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_openai(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One semconv message as OpenAI chat messages (a tool message per tool-call response)."""
    role = message.get("role")
    if role not in ROLES:
        raise Unsupported(f"the role {role!r}")
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    tool_results: list[dict[str, Any]] = []
    for part in message.get("parts") or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            content.append({"type": "text", "text": _text_of(part)})
        elif kind == "tool_call":
            calls.append(
                {
                    "id": part.get("id") or f"call_{len(calls)}",
                    "type": "function",
                    "function": {"name": part.get("name") or "", "arguments": _arguments(part.get("arguments", {}))},
                }
            )
        elif kind == "tool_call_response":
            response = part.get("response")
            text = response if isinstance(response, str) else json.dumps(response, ensure_ascii=False)
            tool_results.append({"role": "tool", "tool_call_id": part.get("id") or "", "content": text})
        elif kind in ("uri", "blob", "file"):
            content.append(_media(part))
        elif kind == "reasoning":
            continue
        else:
            raise Unsupported(f"a {kind!r} part")
    if role == "tool":
        return tool_results
    out: dict[str, Any] = {"role": role}
    texts_only = all(c["type"] == "text" for c in content)
    if texts_only and len(content) <= 1:
        out["content"] = content[0]["text"] if content else ("" if not calls else None)
    else:
        out["content"] = content
    if calls:
        out["tool_calls"] = calls
    if message.get("name"):
        out["name"] = message["name"]
    return [out, *tool_results]


def conversation(input_messages: str, system_instructions: str = "") -> list[dict[str, Any]]:
    """The messages a call sent, as OpenAI chat messages; system instructions sent apart come first."""
    messages: list[dict[str, Any]] = []
    for message in parse(input_messages):
        messages.extend(to_openai(message))
    system = [p for p in parse(system_instructions) if p.get("type") == "text"]
    if system and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": "\n\n".join(_text_of(p) for p in system)})
    return messages


def answer(output_messages: str, response_text: str = "") -> dict[str, Any] | None:
    """The call's answer as one assistant message (the first output choice), or None when none was captured."""
    for message in parse(output_messages):
        if message.get("role") == "assistant":
            converted = to_openai(message)[0]
            if converted.get("content") or converted.get("tool_calls"):
                return converted
            break
    return {"role": "assistant", "content": response_text} if response_text else None


def has_tool_calls(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("tool_calls") or m["role"] == "tool" for m in messages)


def key(messages: list[dict[str, Any]]) -> str:
    """The canonical text of a conversation: two calls had the same input when their keys are equal."""
    return json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
