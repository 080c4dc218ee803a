"""``@observe``: instrument sync, async, generator and async-generator functions.

The wrappers are thin shells: stamp a :class:`SpanRecord`, run the user's code in its context,
re-raise the user's exceptions unchanged, and hand the record to the pipeline. Everything that
costs (reading the response, redaction, cost, serialization) happens later on the export thread.
Before ``configure()`` every wrapper is one global lookup and a direct call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import time_ns
from typing import Any, TypeVar, overload

from . import _state
from ._log import logger
from .spans import UNSAMPLED, SpanRecord, current_span, scoped_attributes

F = TypeVar("F", bound=Callable[..., Any])
_KINDS = ("auto", "llm", "chain", "tool")
_MAX_CHUNKS = 100_000  # a runaway generator must not hold unbounded memory until export


_FIELD_OPTIONS = (
    "model",
    "provider",
    "prompt_template",
    "prompt_version",
    "model_version",
    "base_model",
    "quantization",
)


@dataclass(frozen=True)
class ObserveOptions:
    """What ``@observe(...)`` was given; fixed at decoration time."""

    name: str
    kind: str = "auto"
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    prompt_template: str | None = None
    prompt_version: str | None = None
    model_version: str | None = None
    base_model: str | None = None
    quantization: str | None = None
    capture_content: bool | None = None
    context_arg: str | None = None
    attributes: Mapping[str, Any] | None = None
    signature: inspect.Signature | None = None
    positional: tuple[str, ...] | None = None  # parameter names for binding positional args cheaply
    # The span fields these options give, worked out once for the export thread (see enrich._fields).
    fields: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = {key: value for key in _FIELD_OPTIONS if (value := getattr(self, key)) is not None}
        given["attributes"] = dict(self.attributes or {})
        object.__setattr__(self, "fields", given)


@overload
def observe(func: F, /) -> F: ...


@overload
def observe(
    func: None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "auto",
    model: str | None = None,
    provider: str | None = None,
    operation: str | None = None,
    prompt_template: str | None = None,
    prompt_version: str | None = None,
    model_version: str | None = None,
    base_model: str | None = None,
    quantization: str | None = None,
    capture_content: bool | None = None,
    context_arg: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Callable[[F], F]: ...


def observe(func: Any = None, /, **options: Any) -> Any:
    """Record each call of the decorated function as a span.

    Use bare (``@observe``) or with options (``@observe(model="gpt-4o", prompt_version="v3")``).
    ``kind="llm"`` marks an LLM call, ``"chain"``/``"tool"`` a step of a pipeline; ``"auto"`` (the
    default) decides from what the function returns: an LLM response makes an LLM span.
    ``context_arg`` names the argument that carries RAG context documents.
    """
    kind = options.get("kind", "auto")
    if kind not in _KINDS:
        raise ValueError(f"observe(kind=...) must be one of {', '.join(_KINDS)}, got {kind!r}")
    unknown = set(options) - (set(ObserveOptions.__dataclass_fields__) - {"signature", "positional", "fields"})
    if unknown:
        raise TypeError(f"observe() got unknown option(s): {', '.join(sorted(unknown))}")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@observe needs a function, got {type(fn).__name__}")
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None
        opts = ObserveOptions(
            **{**options, "name": options.get("name") or getattr(fn, "__qualname__", repr(fn))},
            signature=signature,
            positional=_positional_names(signature),
        )
        if inspect.isasyncgenfunction(fn):
            return _wrap_async_generator(fn, opts)  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):
            return _wrap_coroutine(fn, opts)  # type: ignore[return-value]
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(fn, opts)  # type: ignore[return-value]
        return _wrap_function(fn, opts)  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def _positional_names(signature: inspect.Signature | None) -> tuple[str, ...] | None:
    """Names that positional arguments bind to, when binding is a plain zip (no ``*args``)."""
    if signature is None:
        return None
    names = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            names.append(param.name)
    return tuple(names)


# --- hot path ------------------------------------------------------------------------------------------


_NESTED = frozenset({list, dict, tuple})
_MAX_COPY_DEPTH = 32


def _copy(value: Any, depth: int) -> Any:
    """A structural copy of nested lists/dicts/tuples; other objects (models, clients) are kept by reference.

    Copies at C speed (``dict.copy``, ``list``) and fixes up only the nested values; dicts inside a list
    (chat messages) are handled inline, which halves the cost of a call per message.
    """
    if depth > _MAX_COPY_DEPTH:
        return value
    depth += 1
    if type(value) is dict:
        out = value.copy()
        for key, item in out.items():  # replacing values while iterating is safe: the size does not change
            if type(item) in _NESTED:
                out[key] = _copy(item, depth)
        return out
    items = list(value)
    for i, item in enumerate(items):
        kind = type(item)
        if kind is dict:
            item = items[i] = item.copy()
            for key, inner in item.items():
                if type(inner) in _NESTED:
                    item[key] = _copy(inner, depth + 1)
        elif kind in _NESTED:
            items[i] = _copy(item, depth)
    return items if type(value) is list else tuple(items)


def _start(opts: ObserveOptions, args: tuple, kwargs: dict) -> Any:
    """A new record, UNSAMPLED (run in an unsampled context), or None (not configured: call through)."""
    pipeline = _state.pipeline
    if pipeline is None:
        return None
    try:
        parent = current_span.get()
        if parent is UNSAMPLED:
            return None
        if parent is None and pipeline.sample_rate < 1.0 and not pipeline.sample():
            return UNSAMPLED
        if pipeline.capture_content:
            # Snapshot lists and dicts (chat histories, their messages) the app may change right after the call.
            if kwargs and not _NESTED.isdisjoint(map(type, kwargs.values())):
                kwargs = {k: _copy(v, 0) if type(v) in _NESTED else v for k, v in kwargs.items()}
            if args and not _NESTED.isdisjoint(map(type, args)):
                args = tuple(
                    [_copy(a, 0) if type(a) in _NESTED else a for a in args]
                )  # a list: faster than a generator
        return SpanRecord(opts, args, kwargs, parent)
    except Exception:
        logger.warning("llmpulse: could not start a span; the call runs uninstrumented", exc_info=True)
        return None


def _end(record: SpanRecord) -> None:
    try:
        record.end_ns = time_ns()
        pipeline = _state.pipeline
        if pipeline is not None:
            pipeline.emit(record)
    except Exception:
        logger.warning("llmpulse: could not end a span", exc_info=True)


def _fail(record: Any, exc: BaseException) -> None:
    if record is UNSAMPLED:
        return
    record.error = exc
    _end(record)


def _finish(record: Any, result: Any) -> Any:
    """End the span, or, when the call returned a stream, wrap it so the span ends with the stream."""
    if record is UNSAMPLED:
        return result
    try:
        stream_kind = _stream_kind(type(result))
        if stream_kind == "sync":
            return ObservedIterator(result, record)
        if stream_kind == "async":
            return ObservedAsyncIterator(result, record)
        if stream_kind == "sync_manager":
            return ObservedStreamManager(result, record)
        if stream_kind == "async_manager":
            return ObservedAsyncStreamManager(result, record)
        record.result = result
    except Exception:
        logger.warning("llmpulse: could not read a result", exc_info=True)
    _end(record)
    return result


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


def _stream_kind(cls: type) -> str | None:
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


def _wrap_function(fn: Callable[..., Any], opts: ObserveOptions) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        record = _start(opts, args, kwargs)
        if record is None:
            return fn(*args, **kwargs)
        token = current_span.set(record)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            current_span.reset(token)
            _fail(record, exc)
            raise
        current_span.reset(token)
        return _finish(record, result)

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], opts: ObserveOptions) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        record = _start(opts, args, kwargs)
        if record is None:
            return await fn(*args, **kwargs)
        token = current_span.set(record)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:  # includes asyncio.CancelledError: recorded, then re-raised
            current_span.reset(token)
            _fail(record, exc)
            raise
        current_span.reset(token)
        return _finish(record, result)

    return wrapper


def _wrap_generator(fn: Callable[..., Any], opts: ObserveOptions) -> Callable[..., Any]:
    return _wrap_iterator_factory(fn, opts, ObservedIterator)


def _wrap_async_generator(fn: Callable[..., Any], opts: ObserveOptions) -> Callable[..., Any]:
    return _wrap_iterator_factory(fn, opts, ObservedAsyncIterator)


def _wrap_iterator_factory(fn: Callable[..., Any], opts: ObserveOptions, proxy: type) -> Callable[..., Any]:
    """Generator functions: the span opens at the call and ends with the iterator, via ``proxy``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        record = _start(opts, args, kwargs)
        if record is None:
            return fn(*args, **kwargs)
        return proxy(fn(*args, **kwargs), record)

    return wrapper


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
        _end(record)

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
            self._close("abandoned")


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
            self._close("abandoned")


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
    """Wraps an SDK stream manager; ``__enter__`` sends the request and returns an observed stream."""

    __slots__ = ("__weakref__", "_ended", "_manager", "_record", "_stream")

    def __init__(self, manager: Any, record: Any) -> None:
        self._manager = manager
        self._record = record
        self._stream: _ObservedBase | None = None
        self._ended = False

    def _finish(self, error: BaseException | None) -> None:
        observed = self._stream
        if observed is None:  # never entered, or entering failed (then _fail ended the span)
            if not self._ended:
                self._ended = True
                _end(self._record)
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

    def __enter__(self) -> ObservedIterator:
        try:
            stream = self._manager.__enter__()
        except BaseException as exc:
            self._ended = True
            _fail(self._record, exc)
            raise
        self._stream = observed = ObservedIterator(stream, self._record)
        return observed

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._manager.__exit__(*exc_info)
        finally:
            self._finish(exc_info[1])


class ObservedAsyncStreamManager(_ObservedManagerBase):
    __slots__ = ()

    async def __aenter__(self) -> ObservedAsyncIterator:
        try:
            stream = await self._manager.__aenter__()
        except BaseException as exc:
            self._ended = True
            _fail(self._record, exc)
            raise
        self._stream = observed = ObservedAsyncIterator(stream, self._record)
        return observed

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc_info)
        finally:
            self._finish(exc_info[1])


# --- enrichment from inside a call -----------------------------------------------------------------

_UPDATABLE = {
    "user_id",
    "session_id",
    "conversation_id",
    "rag_context",
    "prompt_template",
    "prompt_version",
    "model",
    "provider",
    "model_version",
    "base_model",
    "quantization",
    "attributes",
}


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise TypeError(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_UPDATABLE))}")


def update_current_span(**fields: Any) -> bool:
    """Add user/session ids, RAG context, prompt or model metadata to the span of the running call.

    Returns False when no span is active (not configured, unsampled, or outside ``@observe``).
    """
    _check_fields(fields)
    record = current_span.get()
    if not isinstance(record, SpanRecord):
        return False
    if record.extra is None:
        record.extra = {}
    record.extra.update(fields)
    return True


@contextmanager
def attributes(**fields: Any) -> Any:
    """Apply user/session ids and other fields to every span started inside the block."""
    _check_fields(fields)
    merged = {**(scoped_attributes.get() or {}), **fields}
    token = scoped_attributes.set(merged)
    try:
        yield merged
    finally:
        scoped_attributes.reset(token)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the running observed call, for ``feedback()`` later."""
    record = current_span.get()
    if not isinstance(record, SpanRecord):
        return None
    return f"{record.trace_id:032x}", f"{record.span_id:016x}"
