"""Streaming query responses: the query and synthesize spans last until the answer has streamed.

A streaming query returns a ``StreamingResponse`` at once; the LLM is called only when the app iterates
its ``response_gen``, in the app's own context, where LlamaIndex's dispatcher no longer knows the query
(the LLM span would start a trace of its own). So the handler replaces ``response_gen`` by a relay that
yields the same items and, around each step, makes the deferred span the *owner* (the parent of
dispatcher spans that start with none) and the current llmpulse span. The span ends when the stream is
exhausted (with the full text), fails, is closed, or is dropped unread (``abandoned``).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from llmpulse.agent.sdk.spans import current_span

stream_owner: ContextVar[Any] = ContextVar("llmpulse_llamaindex_stream_owner", default=None)
"""The deferred span whose streamed response is being read in this context (else None)."""


class Ender(Protocol):
    def current_record(self, node: Any) -> Any: ...
    def end_deferred(self, node: Any, output: str, state: str) -> None: ...
    def fail_deferred(self, node: Any, exc: BaseException) -> None: ...


def is_stream(value: Any) -> bool:
    """A generator or async generator (what a streaming LLM method returns)."""
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


def relay_response(result: Any, node: Any, ender: Ender) -> bool:
    """Put a relay in front of ``result.response_gen``; False when the response is not an unread stream."""
    source = getattr(result, "response_gen", None)
    if inspect.isgenerator(source):
        relay: Any = _relay(source, node, ender)
    elif inspect.isasyncgen(source):
        relay = _relay_async(source, node, ender)
    else:
        return False
    result.response_gen = relay
    weakref.finalize(relay, ender.end_deferred, node, "", "abandoned").atexit = False  # dropped unread
    return True


def _close(source: Any) -> None:
    try:
        source.close()
    except Exception:  # a generator that ignores GeneratorExit: nothing more to do
        pass


def _relay(source: Iterator[Any], node: Any, ender: Ender) -> Iterator[Any]:
    texts: list[str] = []
    try:
        while True:
            owner = stream_owner.set(node)
            span = current_span.set(ender.current_record(node))
            try:
                item = next(source)
            except StopIteration:
                break
            finally:
                current_span.reset(span)
                stream_owner.reset(owner)
            if isinstance(item, str):
                texts.append(item)
            yield item
    except GeneratorExit:
        _close(source)
        ender.end_deferred(node, "".join(texts), "abandoned")
        raise
    except BaseException as exc:
        ender.fail_deferred(node, exc)
        raise
    ender.end_deferred(node, "".join(texts), "completed")


async def _relay_async(source: Any, node: Any, ender: Ender) -> AsyncIterator[Any]:
    texts: list[str] = []
    try:
        while True:
            owner = stream_owner.set(node)
            span = current_span.set(ender.current_record(node))
            try:
                item = await source.__anext__()
            except StopAsyncIteration:
                break
            finally:
                current_span.reset(span)
                stream_owner.reset(owner)
            if isinstance(item, str):
                texts.append(item)
            yield item
    except GeneratorExit:
        ender.end_deferred(node, "".join(texts), "abandoned")
        try:
            await source.aclose()
        except Exception:
            pass
        raise
    except BaseException as exc:
        ender.fail_deferred(node, exc)
        raise
    ender.end_deferred(node, "".join(texts), "completed")
