"""Calls recorded without a decorator: the span API that auto-instrumentation and framework handlers use.

Two shapes, one set of rules:

* :func:`run_call` / :func:`run_call_async` wrap one library call (``client.chat.completions.create``):
  the span starts before it, ends after it (or with the stream it returned), and the library's
  exceptions pass through unchanged;
* :func:`start_call` / :func:`finish_call` / :func:`fail_call` for callback APIs (LangChain, LlamaIndex)
  whose start and end arrive as separate events.

The rules, so that one LLM call makes one LLM span:

* inside an ``@observe(kind="llm")`` function (or a framework's LLM span) an instrumented client call is
  not a second span: it is *folded* into the enclosing one, whose request and response it completes
  where the function's own arguments and return value say less (a function that returns only the
  answer text still gets the call's model, tokens and cost);
* inside an ``@observe`` span of kind ``auto``, the client call is the LLM span and the enclosing one
  becomes a chain step, even if it returns the response;
* inside a chain or tool span it nests as a child; with no span around it, it starts a trace.

Nothing here raises into the app: instrumentation errors are logged and the call runs unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llmpulse.agent._log import logger

from . import state
from .decorator import _NESTED, ObserveOptions, _copy, finish_record
from .spans import UNSAMPLED, SpanRecord, call_in_span, call_in_span_async, current_span, fail_span

_CURRENT = object()
_options: dict[tuple[str, str, str | None, str | None], ObserveOptions] = {}


def call_options(
    name: str, *, kind: str = "llm", provider: str | None = None, operation: str | None = None
) -> ObserveOptions:
    """The fixed options of one instrumented entry point (made once per name, kind, provider, operation)."""
    key = (name, kind, provider, operation)
    found = _options.get(key)
    if found is None:
        found = _options[key] = ObserveOptions(name=name, kind=kind, provider=provider, operation=operation)
    return found


def _snapshot(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments as they were at call time: nested lists and dicts (chat histories) copied, as ``@observe`` does."""
    if not _NESTED.isdisjoint(map(type, kwargs.values())):
        return {k: _copy(v, 0) if type(v) in _NESTED else v for k, v in kwargs.items()}
    return kwargs


def start_call(
    options: ObserveOptions,
    kwargs: Mapping[str, Any],
    *,
    parent: Any = _CURRENT,
    extra: Mapping[str, Any] | None = None,
) -> SpanRecord | None:
    """A record for a call about to run, or None when it is not recorded as its own span.

    None: before ``configure()``, in an unsampled trace, or when an LLM call is folded into the LLM span
    around it (``parent``: the current span unless given; a framework handler passes the span of the
    parent run, or None for a root). ``extra`` holds ``update_current_span`` fields (``rag_context``,
    ``user_id``...).
    """
    pipeline = state.pipeline
    if pipeline is None:
        return None
    try:
        if parent is _CURRENT:
            parent = current_span.get()
        if parent is UNSAMPLED:
            return None
        if parent is None and pipeline.sample_rate < 1.0 and not pipeline.sample():
            return None
        kwargs = _snapshot(dict(kwargs)) if pipeline.capture_content else dict(kwargs)
        if parent is not None and options.kind == "llm":
            enclosing = parent.options.kind
            if enclosing == "llm":
                parent.inner_call = (kwargs, None)
                return None
            if enclosing == "auto":
                parent.llm_child = True
        record = SpanRecord(options, (), kwargs, parent)
        if extra:
            record.extra = dict(extra)
        return record
    except Exception:
        logger.warning("llmpulse: could not start a span; the call runs uninstrumented", exc_info=True)
        return None


def begin_call(options: ObserveOptions, kwargs: dict[str, Any], pipeline: Any) -> Any:
    """``run_call``'s start (for wrappers that inline ``run_call``): a record, UNSAMPLED (an unsampled root:
    calls inside are skipped too), or None (folded into the LLM span around it, or inside an unsampled
    trace). ``kwargs`` is the wrapper's own dict, kept as the record's request."""
    try:
        parent = current_span.get()
        if parent is UNSAMPLED:
            return None
        if parent is None:
            if pipeline.sample_rate < 1.0 and not pipeline.sample():
                return UNSAMPLED
        elif options.kind == "llm":
            enclosing = parent.options.kind
            if enclosing == "llm":
                parent.inner_call = (_snapshot(kwargs) if pipeline.capture_content else kwargs, None)
                return None
            if enclosing == "auto":
                parent.llm_child = True
        if pipeline.capture_content:
            kwargs = _snapshot(kwargs)
        return SpanRecord(options, (), kwargs, parent)
    except Exception:
        logger.warning("llmpulse: could not start a span; the call runs uninstrumented", exc_info=True)
        return None


def finish_call(record: SpanRecord | None, result: Any) -> Any:
    """End a call that returned ``result``; a returned stream is wrapped so the span ends with it."""
    if record is None:
        return result
    return finish_record(record, result)


def fail_call(record: SpanRecord | None, exc: BaseException) -> None:
    """End a call that raised ``exc`` (the caller re-raises it unchanged)."""
    if record is not None:
        fail_span(record, exc)


def run_call(options: ObserveOptions, kwargs: dict[str, Any], call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args, **kwargs)`` recorded as one span; exceptions pass through unchanged.

    The hot path of every instrumented client call, kept as lean as ``@observe``'s: ``kwargs`` is the
    wrapper's own ``**kwargs`` dict (kept as the record's request, not copied again).
    """
    pipeline = state.pipeline
    if pipeline is None:
        return call(*args, **kwargs)
    record = begin_call(options, kwargs, pipeline)
    if record is None:
        result = call(*args, **kwargs)
        fold_result(options, result)
        return result
    token = current_span.set(record)
    try:
        result = call(*args, **kwargs)
    except BaseException as exc:
        current_span.reset(token)
        fail_span(record, exc)
        raise
    current_span.reset(token)
    return finish_record(record, result)


async def run_call_async(options: ObserveOptions, kwargs: dict[str, Any], call: Callable[..., Any], *args: Any) -> Any:
    """Async twin of :func:`run_call` (``call`` returns an awaitable)."""
    pipeline = state.pipeline
    if pipeline is None:
        return await call(*args, **kwargs)
    record = begin_call(options, kwargs, pipeline)
    if record is None:
        result = await call(*args, **kwargs)
        fold_result(options, result)
        return result
    return finish_record(record, await call_in_span_async(record, call, *args, **kwargs))


def fold_result(options: ObserveOptions, result: Any) -> None:
    """After an LLM call ``start_call`` did not record: hand its response to the LLM span it was folded into, if any."""
    if options.kind != "llm":
        return
    try:
        parent = current_span.get()
        if parent is not None and parent is not UNSAMPLED and parent.inner_call is not None:
            parent.inner_call = (parent.inner_call[0], result)
    except Exception:
        logger.warning("llmpulse: could not record a folded call", exc_info=True)


__all__ = [
    "begin_call",
    "call_in_span",
    "call_in_span_async",
    "call_options",
    "fail_call",
    "finish_call",
    "fold_result",
    "run_call",
    "run_call_async",
    "start_call",
]
