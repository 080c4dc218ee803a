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
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from llmpulse.agent._log import logger

from . import state
from .spans import UNSAMPLED, SpanRecord, call_in_span_async, current_span, end_span, fail_span
from .streams import (
    ObservedAsyncIterator,
    ObservedAsyncStreamManager,
    ObservedIterator,
    ObservedStreamManager,
    stream_kind,
)

F = TypeVar("F", bound=Callable[..., Any])
_KINDS = ("auto", "llm", "chain", "tool")


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
    # The span fields these options give, worked out once for the export thread (see enrich.span._fields).
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
    pipeline = state.pipeline
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


def finish_record(record: Any, result: Any) -> Any:
    """End the span, or, when the call returned a stream, wrap it so the span ends with the stream."""
    if record is UNSAMPLED:
        return result
    try:
        kind = stream_kind(type(result))
        if kind == "sync":
            return ObservedIterator(result, record)
        if kind == "async":
            return ObservedAsyncIterator(result, record)
        if kind == "sync_manager":
            return ObservedStreamManager(result, record)
        if kind == "async_manager":
            return ObservedAsyncStreamManager(result, record)
        record.result = result
    except Exception:
        logger.warning("llmpulse: could not read a result", exc_info=True)
    end_span(record)
    return result


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
            fail_span(record, exc)
            raise
        current_span.reset(token)
        return finish_record(record, result)

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], opts: ObserveOptions) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        record = _start(opts, args, kwargs)
        if record is None:
            return await fn(*args, **kwargs)
        return finish_record(record, await call_in_span_async(record, fn, *args, **kwargs))

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
