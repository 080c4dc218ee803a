"""OpenAI legacy completions: a ``Completion`` (its stream chunks are read by ``openai_chat.ChatStream``)."""

from __future__ import annotations

from typing import Any

from .access import _float, _get, _get_str, _list
from .openai_chat import _apply_openai_usage
from .parsed import ParsedResponse
from .parts import _text_part, map_finish_reason


def parse_completion(obj: Any) -> ParsedResponse:
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
