"""The span record the hot path fills, the context that nests spans, and the hand-over to the pipeline.

The hot path only stamps times, ids and references into a ``SpanRecord`` and hands it to the
pipeline; parsing responses, redaction, cost and serialization all happen on the export thread
(``agent.enrich``). That is how ``@observe`` stays cheaper than a plain OpenTelemetry span.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable
from typing import Any

from llmpulse.agent._log import logger

from . import state

# Current llmpulse span (or UNSAMPLED) of this thread / task.
current_span: contextvars.ContextVar[Any] = contextvars.ContextVar("llmpulse_current_span", default=None)
# Attributes applied to every span started inside ``with attributes(...)``.
scoped_attributes: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "llmpulse_scoped_attributes", default=None
)

UNSAMPLED = object()
_rand = random.Random()
_getrandbits = _rand.getrandbits
_time_ns = time.time_ns

try:  # a parent from the app's own OpenTelemetry context, when opentelemetry-api is there
    from opentelemetry import trace as _otel_trace

    _get_current_otel_span = _otel_trace.get_current_span
except ImportError:  # pragma: no cover - opentelemetry-api is a core dependency
    _get_current_otel_span = None


def reseed_after_fork() -> None:
    """A forked child must not repeat its parent's id sequence."""
    _rand.seed()


class SpanRecord:
    """One observed call. Mutable while the call runs; handed to the pipeline when it ends."""

    __slots__ = (
        "args",
        "chunks",
        "end_ns",
        "error",
        "extra",
        "first_chunk_ns",
        "inner_call",
        "kwargs",
        "llm_child",
        "name",
        "options",
        "parent_id",
        "result",
        "scoped",
        "span_id",
        "start_ns",
        "status_message",
        "stream_state",
        "trace_id",
    )

    def __init__(self, options: Any, args: tuple, kwargs: dict, parent: SpanRecord | None) -> None:
        self.options = options
        self.args = args
        self.kwargs = kwargs
        self.span_id = _getrandbits(64) or 1
        if parent is not None:
            self.trace_id = parent.trace_id
            self.parent_id = parent.span_id
        else:
            self.trace_id, self.parent_id = _root_ids()
        self.scoped = scoped_attributes.get()
        self.result: Any = None
        self.chunks: list[Any] | None = None
        self.first_chunk_ns = 0
        self.error: BaseException | None = None
        self.status_message: str | None = None
        self.stream_state: str | None = None  # None | "completed" | "abandoned"
        self.extra: dict[str, Any] | None = None  # update_current_span() values
        self.name: str | None = None
        self.inner_call: tuple[dict, Any] | None = None  # an instrumented client call folded into this span
        self.llm_child = False  # an instrumented LLM call ran inside: an "auto" span is then a chain step
        self.end_ns = 0
        self.start_ns = _time_ns()


def _root_ids() -> tuple[int, int]:
    """A new trace, unless the app is inside an OpenTelemetry span: then join its trace."""
    if _get_current_otel_span is not None:
        context = _get_current_otel_span().get_span_context()
        if context.is_valid:
            return context.trace_id, context.span_id
    return (_getrandbits(128) or 1), 0


def end_span(record: SpanRecord) -> None:
    """Stamp the end time and hand the record to the pipeline (which never blocks); never raises."""
    try:
        record.end_ns = _time_ns()
        pipeline = state.pipeline
        if pipeline is not None:
            pipeline.emit(record)
    except Exception:
        logger.warning("llmpulse: could not end a span", exc_info=True)


def fail_span(record: Any, exc: BaseException) -> None:
    """End the span of a call that raised ``exc`` (the caller re-raises it unchanged)."""
    if record is UNSAMPLED:
        return
    record.error = exc
    end_span(record)


def call_in_span(record: SpanRecord, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` with ``record`` as the current span; an exception fails the span and passes
    through unchanged. The caller ends the span with what it returns (``finish_record`` or its own ending)."""
    token = current_span.set(record)
    try:
        result = call(*args, **kwargs)
    except BaseException as exc:
        current_span.reset(token)
        fail_span(record, exc)
        raise
    current_span.reset(token)
    return result


async def call_in_span_async(record: SpanRecord, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Async twin of :func:`call_in_span` (``call`` returns an awaitable; cancellation is recorded, re-raised)."""
    token = current_span.set(record)
    try:
        result = await call(*args, **kwargs)
    except BaseException as exc:
        current_span.reset(token)
        fail_span(record, exc)
        raise
    current_span.reset(token)
    return result
