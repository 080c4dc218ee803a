"""Anthropic responses: a ``Message``, raw stream events, or the SDK's ``MessageStream`` events."""

from __future__ import annotations

from typing import Any

from .access import (
    _get,
    _get_str,
    _int,
    _json_or_raw,
)
from .parsed import ParsedResponse
from .parts import (
    _content_part,
    _content_parts,
    _text_part,
    _tool_call_part,
    map_finish_reason,
)


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


def parse_message(obj: Any) -> ParsedResponse:
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

EVENTS = frozenset(
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


class AnthropicStream:
    """Anthropic raw stream events and the SDK's ``MessageStream`` events: content blocks, stop reason, usage."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self.start_usage: Any = None
        self.delta_usage: Any = None
        self.stop_reason: str | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.sdk_text: list[str] = []
        self.raw_text_seen = False
        self.final_message: Any = None

    def feed(self, event: Any, kind: str) -> None:
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

    def result(self) -> ParsedResponse:
        if self.final_message is not None:
            res = parse_message(self.final_message)
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
