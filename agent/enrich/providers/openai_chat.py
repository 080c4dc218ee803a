"""OpenAI chat completions: a ``ChatCompletion`` (SDK object or dict) and its stream of chunks.

The stream state (``ChatStream``) also reads legacy completion chunks: both are ``choices`` deltas.
"""

from __future__ import annotations

from typing import Any

from .access import _float, _get, _get_str, _getter, _int, _list, _str
from .parsed import ParsedResponse
from .parts import _FINISH_MAP, _content_parts, _openai_tool_call, _text_part, _tool_call_part, map_finish_reason

_NO_USAGE = (None, None, None, None, None)


def _openai_usage(usage: Any) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """Chat/completions usage as (input, output, cache read, cache creation, reasoning) tokens.

    prompt_tokens already include cached tokens (read and, where a provider reports them, written: litellm's
    ``prompt_tokens_details.cache_creation_tokens``), completion_tokens include reasoning.
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
        if cache_creation is None:  # litellm's usage (OpenAI's shape for every provider) names it so
            cache_creation = get_detail("cache_creation_tokens")
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


def _logprobs(entries: Any) -> list[float] | None:
    items = _list(entries)
    if not items:
        return None
    values = [_float(_get(e, "logprob")) for e in items]
    return [v for v in values if v is not None] or None


def parse_chat(obj: Any) -> ParsedResponse:
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


def parse_chat_dict(obj: dict) -> ParsedResponse | None:
    """``parse_chat`` for the common plain-dict completion: one text choice, no refusal, tool calls or logprobs.

    Returns ``None`` (caller falls back to ``parse_chat``) for anything else; same result as ``parse_chat``.
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


class ChatStream:
    """An OpenAI chat or legacy completion stream: content, refusal and tool-call deltas per choice, final usage."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "chat" | "text_completion"
        self.model: str | None = None
        self.id: str | None = None
        self.usage: Any = None
        self.choices: dict[int, _ChatChoiceAcc] = {}

    def feed(self, chunk: Any) -> None:
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

    def result(self) -> ParsedResponse:
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
