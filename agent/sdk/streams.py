"""Stream proxies: a span that lasts as long as the stream its call returned.

A generator, an SDK stream or an SDK stream manager returned by an ``@observe`` call is wrapped so the
span records the time to the first chunk, keeps the chunks for the export thread, and ends exactly once:
when the stream is exhausted, fails, is closed, or is dropped unfinished (``abandoned``). Steps run in
the caller's own thread or task, with the span as the current one.
"""

from __future__ import annotations

import inspect
from time import time_ns
from typing import Any

from .spans import UNSAMPLED, current_span, end_span, fail_span

_MAX_CHUNKS = 100_000  # a runaway generator must not hold unbounded memory until export


_STREAM_TYPES: dict[type, str | None] = {}
_STREAM_CLASS_NAMES = {
    "Stream",
    "AsyncStream",
    "MessageStream",
    "AsyncMessageStream",
    "BetaMessageStream",
    "BetaAsyncMessageStream",
    "ChatCompletionStream",
    "AsyncChatCompletionStream",
    "ResponseStream",
    "AsyncResponseStream",
}
# ``client.messages.stream(...)`` / ``client.chat.completions.stream(...)`` / ``client.responses.stream(...)``
# return a manager that sends the request on ``__enter__``; the span must last until the managed stream ends.
_MANAGER_CLASS_NAMES = {
    "MessageStreamManager",
    "AsyncMessageStreamManager",
    "BetaMessageStreamManager",
    "BetaAsyncMessageStreamManager",
    "ChatCompletionStreamManager",
    "AsyncChatCompletionStreamManager",
    "ResponseStreamManager",
    "AsyncResponseStreamManager",
}
# What the SDK helpers accumulated, read when the caller consumed them around the proxy (``text_stream``,
# ``get_final_message()``, ``until_done()``).
_SNAPSHOT_ATTRS = ("current_message_snapshot", "current_completion_snapshot")


def stream_kind(cls: type) -> str | None:
    """'sync' / 'async' for generators and SDK streams, 'sync_manager' / 'async_manager' for SDK stream managers."""
    try:
        return _STREAM_TYPES[cls]
    except KeyError:
        pass
    kind = None
    if inspect.isclass(cls):
        if hasattr(cls, "__anext__") and hasattr(cls, "asend"):
            kind = "async"
        elif hasattr(cls, "__next__") and hasattr(cls, "send") and hasattr(cls, "throw"):
            kind = "sync"
        else:
            for base in cls.__mro__:
                module = getattr(base, "__module__", "") or ""
                if module.split(".")[0] not in ("openai", "anthropic"):
                    continue
                if base.__name__ in _STREAM_CLASS_NAMES:
                    kind = "async" if hasattr(cls, "__aiter__") else "sync"
                    break
                if base.__name__ in _MANAGER_CLASS_NAMES:
                    kind = "async_manager" if hasattr(cls, "__aenter__") else "sync_manager"
                    break
    _STREAM_TYPES[cls] = kind
    return kind


class _ObservedBase:
    """Shared state of the stream proxies: the span ends exactly once, however the stream ends."""

    __slots__ = ("__weakref__", "_done", "_it", "_record")

    def __init__(self, iterator: Any, record: Any) -> None:
        self._it = iterator
        self._record = record
        self._done = False
        if record is not UNSAMPLED:
            record.chunks = []

    def _chunk(self, item: Any) -> None:
        record = self._record
        if record is UNSAMPLED:
            return
        if not record.first_chunk_ns:
            record.first_chunk_ns = time_ns()
        chunks = record.chunks
        if len(chunks) < _MAX_CHUNKS:
            chunks.append(item)

    def _close(self, state: str, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        record = self._record
        if record is UNSAMPLED:
            return
        record.stream_state = state
        if error is not None:
            record.error = error
        end_span(record)

    def _close_block(self, error: BaseException | None) -> None:
        """Leaving a ``with`` block: an exception raised in it (the app's own included) fails the stream's span."""
        if error is not None and not isinstance(error, GeneratorExit):
            self._close("failed", error)
        else:
            self._close("abandoned")

    def __getattr__(self, name: str) -> Any:
        # Provider stream objects carry more than iteration (``.response``, ``.get_final_message()``).
        return getattr(self._it, name)

    def __repr__(self) -> str:
        return f"<observed {self._it!r}>"

    def __del__(self) -> None:
        # A stream dropped without being exhausted or closed still ends its span.
        if not self._done:
            try:
                self._close("abandoned")
            except Exception:  # never raise from a finalizer
                pass


class ObservedIterator(_ObservedBase):
    """Wraps a generator or a provider stream; records time to first chunk and ends the span."""

    __slots__ = ()

    def __iter__(self) -> ObservedIterator:
        return self

    def __next__(self) -> Any:
        return self._step(next, self._it)

    def send(self, value: Any) -> Any:
        return self._step(self._it.send, value)

    def throw(self, *exc_info: Any) -> Any:
        return self._step(self._it.throw, *exc_info)

    def _step(self, method: Any, *args: Any) -> Any:
        token = current_span.set(self._record)
        try:
            item = method(*args)
        except StopIteration:
            current_span.reset(token)
            self._close("completed")
            raise
        except BaseException as exc:
            current_span.reset(token)
            self._close("failed", exc)
            raise
        current_span.reset(token)
        self._chunk(item)
        return item

    def close(self) -> None:
        try:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
        finally:
            self._close("abandoned")

    def __enter__(self) -> ObservedIterator:
        enter = getattr(self._it, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self._it, "__exit__", None)
            return exit_(*exc_info) if exit_ is not None else None
        finally:
            self._close_block(exc_info[1])


class ObservedAsyncIterator(_ObservedBase):
    """Async twin of :class:`ObservedIterator`; steps run in the caller's own task (no new Task)."""

    __slots__ = ()

    def __aiter__(self) -> ObservedAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        return await self._step(self._it.__anext__)

    async def asend(self, value: Any) -> Any:
        return await self._step(self._it.asend, value)

    async def athrow(self, *exc_info: Any) -> Any:
        return await self._step(self._it.athrow, *exc_info)

    async def _step(self, method: Any, *args: Any) -> Any:
        token = current_span.set(self._record)
        try:
            item = await method(*args)
        except StopAsyncIteration:
            current_span.reset(token)
            self._close("completed")
            raise
        except BaseException as exc:
            current_span.reset(token)
            self._close("failed", exc)
            raise
        current_span.reset(token)
        self._chunk(item)
        return item

    async def aclose(self) -> None:
        try:
            close = getattr(self._it, "aclose", None) or getattr(self._it, "close", None)
            if close is not None:
                result = close()
                if inspect.isawaitable(result):
                    await result
        finally:
            self._close("abandoned")

    async def close(self) -> None:
        await self.aclose()

    async def __aenter__(self) -> ObservedAsyncIterator:
        enter = getattr(self._it, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            exit_ = getattr(self._it, "__aexit__", None)
            return await exit_(*exc_info) if exit_ is not None else None
        finally:
            self._close_block(exc_info[1])


def _snapshot(stream: Any) -> Any:
    for name in _SNAPSHOT_ATTRS:
        try:
            value = getattr(stream, name, None)
        except Exception:  # the SDKs raise when no event has arrived yet
            continue
        if value is not None:
            return value
    return None


class _ObservedManagerBase:
    """Wraps an SDK stream manager; ``__enter__`` sends the request and returns the SDK's stream.

    The SDK streams (``MessageStream``, ``ChatCompletionStream``, ``ResponseStream``) read a raw event
    stream they hold as ``_raw_stream``; that one is swapped for an observed proxy, so every event is
    recorded however the app consumes the stream (iterating it, ``text_stream``, ``until_done()``,
    ``get_final_message()``) and the span completes when the events end. The app gets the SDK's own
    stream object. A stream without that attribute is wrapped itself, as before (its accumulated snapshot
    is read when the block is left).
    """

    __slots__ = ("__weakref__", "_ended", "_manager", "_record", "_stream")

    def __init__(self, manager: Any, record: Any) -> None:
        self._manager = manager
        self._record = record
        self._stream: _ObservedBase | None = None
        self._ended = False

    def _observe(self, stream: Any, proxy: type[_ObservedBase], kind: str) -> Any:
        """What ``__enter__`` returns: ``stream`` with its raw events observed, or a proxy of ``stream``."""
        raw = getattr(stream, "_raw_stream", None)
        if raw is not None and not isinstance(raw, _ObservedBase) and stream_kind(type(raw)) == kind:
            observed = proxy(raw, self._record)
            try:
                stream._raw_stream = observed
            except Exception:
                observed._done = True  # never used: its finalizer must not end the span
            else:
                self._stream = observed
                return stream
        self._stream = observed = proxy(stream, self._record)
        return observed

    def _finish(self, error: BaseException | None) -> None:
        observed = self._stream
        if observed is None:  # never entered, or entering failed (then _fail ended the span)
            if not self._ended:
                self._ended = True
                end_span(self._record)
            return
        if not observed._done and self._record is not UNSAMPLED:
            try:
                self._record.result = _snapshot(observed._it)
            except Exception:
                pass
        observed._close("failed" if error is not None else "abandoned", error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def __del__(self) -> None:
        if self._stream is None and not self._ended:
            try:
                self._finish(None)
            except Exception:
                pass


class ObservedStreamManager(_ObservedManagerBase):
    __slots__ = ()

    def __enter__(self) -> Any:
        # The request is sent here: an instrumented client call it makes is folded into this span.
        token = current_span.set(self._record)
        try:
            stream = self._manager.__enter__()
        except BaseException as exc:
            self._ended = True
            fail_span(self._record, exc)
            raise
        finally:
            current_span.reset(token)
        return self._observe(stream, ObservedIterator, "sync")

    def __exit__(self, *exc_info: Any) -> Any:
        self._finish(exc_info[1])  # first: closing the SDK stream closes the observed events as "abandoned"
        return self._manager.__exit__(*exc_info)


class ObservedAsyncStreamManager(_ObservedManagerBase):
    __slots__ = ()

    async def __aenter__(self) -> Any:
        token = current_span.set(self._record)
        try:
            stream = await self._manager.__aenter__()
        except BaseException as exc:
            self._ended = True
            fail_span(self._record, exc)
            raise
        finally:
            current_span.reset(token)
        return self._observe(stream, ObservedAsyncIterator, "async")

    async def __aexit__(self, *exc_info: Any) -> Any:
        self._finish(exc_info[1])
        return await self._manager.__aexit__(*exc_info)
