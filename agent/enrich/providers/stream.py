"""Rebuild a response from the chunks or events a streaming call yielded; the first recognised one picks the provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .access import _SCALARS, _get, _get_str, _list
from .anthropic import EVENTS as ANTHROPIC_EVENTS
from .anthropic import AnthropicStream
from .openai_chat import ChatStream
from .openai_responses import ResponsesStream
from .parsed import ParsedResponse


class _Stream:
    """Dispatch: plain strings are concatenated; the first provider chunk decides which accumulator reads the rest."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.acc: ChatStream | ResponsesStream | AnthropicStream | None = None

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
        acc = self.acc
        if object_type in ("chat.completion.chunk", "text_completion") or (
            kind is None and _list(_get(chunk, "choices")) is not None
        ):
            if acc is None:
                acc = self.acc = ChatStream("text_completion" if object_type == "text_completion" else "chat")
            if type(acc) is ChatStream:
                acc.feed(chunk)
        elif kind is not None and kind.startswith("response."):
            if acc is None:
                acc = self.acc = ResponsesStream()
            if type(acc) is ResponsesStream:
                acc.feed(chunk, kind)
        elif kind in ANTHROPIC_EVENTS:
            if acc is None:
                acc = self.acc = AnthropicStream()
            if type(acc) is AnthropicStream:
                acc.feed(chunk, kind)

    def result(self) -> ParsedResponse | None:
        if self.acc is not None:
            return self.acc.result()
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
    acc = _Stream()
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
