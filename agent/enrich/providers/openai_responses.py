"""The OpenAI Responses API: a ``Response`` (SDK object or dict) and its stream of events."""

from __future__ import annotations

from typing import Any

from .access import _get, _get_str, _int, _list
from .openai_chat import _logprobs
from .parsed import ParsedResponse
from .parts import _content_part, _text_part, map_finish_reason

_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _apply_responses_usage(res: ParsedResponse, usage: Any) -> None:
    if usage is None:
        return
    res.input_tokens = _int(_get(usage, "input_tokens"))
    res.output_tokens = _int(_get(usage, "output_tokens"))
    details = _get(usage, "input_tokens_details")
    res.cache_read_input_tokens = _int(_get(details, "cached_tokens"))
    res.cache_creation_input_tokens = _int(_get(details, "cache_write_tokens"))
    res.reasoning_output_tokens = _int(_get(_get(usage, "output_tokens_details"), "reasoning_tokens"))


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


def parse_responses(obj: Any) -> ParsedResponse:
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


class ResponsesStream:
    """An OpenAI Responses stream: the terminal event's full response, or what the deltas rebuilt when cut short."""

    def __init__(self) -> None:
        self.final_response: Any = None
        self.started_response: Any = None
        self.text_deltas: list[str] = []
        self.delta_logprobs: list[float] = []
        self.done_items: dict[int, Any] = {}

    def feed(self, event: Any, kind: str) -> None:
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

    def result(self) -> ParsedResponse:
        if self.final_response is not None:
            res = parse_responses(self.final_response)
        else:  # stream cut short: rebuild what we can
            started = self.started_response
            res = parse_responses({"output": [self.done_items[i] for i in sorted(self.done_items)]})
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
