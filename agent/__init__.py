"""llmpulse in-process SDK: one decorator, and every LLM call lands in ClickHouse.

Usage::

    from llmpulse.agent import configure, observe

    configure(service_name="support-bot")  # embedded store in ./.llmpulse, no server


    @observe
    def answer(model: str, messages: list, **params):  # request parameters are read from these arguments
        return client.chat.completions.create(model=model, messages=messages, **params)

Before ``configure()`` everything here is a cheap no-op, so libraries may decorate freely.

Environment variables (``configure()`` arguments win): ``LLMPULSE_DSN``, ``LLMPULSE_DATABASE``,
``LLMPULSE_CAPTURE_CONTENT``, ``LLMPULSE_SAMPLE_RATE``, ``LLMPULSE_SPOOL_DIR``, ``LLMPULSE_SPOOL_MAX_BYTES``,
``LLMPULSE_EXPORT``, ``LLMPULSE_PRICES_FILE``, ``LLMPULSE_MAX_QUEUE_SIZE``, ``LLMPULSE_BATCH_SIZE``,
``LLMPULSE_FLUSH_INTERVAL``, ``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_RESOURCE_ATTRIBUTES``. See README.md "Configuration".
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.export.config import Config, ConfigError, build_config
from llmpulse.agent.export.encode import FeedbackRecord
from llmpulse.agent.export.pipeline import Pipeline
from llmpulse.agent.export.stats import Stats
from llmpulse.agent.sdk import state as _state
from llmpulse.agent.sdk.context import attributes, current_ids, update_current_span
from llmpulse.agent.sdk.decorator import observe
from llmpulse.agent.sdk.spans import reseed_after_fork
from llmpulse.agent.store.dsn import DSNError, open_error_message

__all__ = [
    "Config",
    "ConfigError",
    "DSNError",
    "Stats",
    "attributes",
    "configure",
    "current_ids",
    "feedback",
    "flush",
    "in_current_context",
    "instrument",
    "instrumented",
    "is_configured",
    "observe",
    "response_text",
    "shutdown",
    "stats",
    "uninstrument",
    "update_current_span",
]

_configure_lock = threading.Lock()


def configure(
    dsn: str | None = None,
    *,
    service_name: str | None = None,
    database: str | None = None,
    capture_content: bool | None = None,
    redact: Callable[[str], str] | Sequence[Callable[[str], str]] | None = None,
    sample_rate: float | None = None,
    spool_dir: str | None = None,
    spool_max_bytes: int | None = None,
    otlp_endpoint: str | None = None,
    export: str | Sequence[str] | None = None,
    prices: Mapping[str, Mapping[str, float]] | str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    max_queue_size: int | None = None,
    batch_size: int | None = None,
    flush_interval: float | None = None,
    shutdown_timeout: float | None = None,
    apply_schema: bool | None = None,
    span_exporters: Sequence[Callable[[Sequence[Any]], Any]] = (),
    instrument: str | Sequence[str] | None = None,
    stream_usage: bool = False,
) -> Config:
    """Start exporting. Raises :class:`ConfigError` on any bad value; calling again replaces the pipeline.

    With an embedded (chDB) store the store is opened and its schema applied here, so a locked or
    unusable store is reported now. A ClickHouse server that is down is not an error: records are
    spooled to disk and replayed when it is back.

    ``instrument`` (or ``$LLMPULSE_INSTRUMENT``, comma-separated; ``"all"`` for every installed one) names
    the libraries to record without decorators, as :func:`instrument` does.
    """
    from llmpulse.agent import integrations

    from llmpulse import __version__

    try:
        libraries = integrations.parse_names(instrument) if instrument is not None else integrations.from_environment()
    except integrations.InstrumentError as exc:
        source = "instrument=" if instrument is not None else f"${integrations.ENV_INSTRUMENT}"
        raise ConfigError(f"{source}: {exc}") from None

    config = build_config(
        dsn=dsn,
        service_name=service_name,
        database=database,
        capture_content=capture_content,
        redact=redact,
        sample_rate=sample_rate,
        spool_dir=spool_dir,
        spool_max_bytes=spool_max_bytes,
        otlp_endpoint=otlp_endpoint,
        export=export,
        prices=prices,
        resource_attributes=resource_attributes,
        max_queue_size=max_queue_size,
        batch_size=batch_size,
        flush_interval=flush_interval,
        shutdown_timeout=shutdown_timeout,
        apply_schema=apply_schema,
    )
    with _configure_lock:
        pipeline = Pipeline(config, span_exporters=span_exporters, version=__version__, after_fork=(reseed_after_fork,))
        if config.store is not None and config.store.embedded:
            try:
                pipeline.open_store()
            except Exception as exc:
                pipeline.shutdown(2)  # nothing is queued yet: its threads stop at once
                raise ConfigError(open_error_message(config.store, exc)) from exc
        previous, _state.pipeline = _state.pipeline, pipeline
    if previous is not None:
        logger.info("llmpulse: configure() called again; the previous pipeline was flushed and replaced")
        previous.shutdown()
    if libraries:
        try:
            integrations.instrument(*libraries, stream_usage=stream_usage)
        except integrations.InstrumentError as exc:
            raise ConfigError(str(exc)) from None
    return config


def instrument(*libraries: str, stream_usage: bool = False) -> list[str]:
    """Record every call of these libraries without decorating app code; returns what is instrumented now.

    ``instrument()`` covers every supported library that is installed (openai, anthropic, litellm,
    langchain, llamaindex); ``instrument("threads")`` also carries the current span into thread pools.
    Idempotent; :func:`uninstrument` undoes it. ``stream_usage=True`` asks OpenAI (and litellm) streams for
    their usage (``stream_options={"include_usage": True}`` where the app did not set it).
    """
    from llmpulse.agent.integrations import instrument as _instrument

    return _instrument(*libraries, stream_usage=stream_usage)


def uninstrument(*libraries: str) -> list[str]:
    """Restore the named libraries (none named: all) as they were; returns what is still instrumented."""
    from llmpulse.agent.integrations import uninstrument as _uninstrument

    return _uninstrument(*libraries)


def instrumented() -> list[str]:
    """The libraries instrumented now."""
    from llmpulse.agent.integrations import instrumented as _instrumented

    return _instrumented()


def in_current_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` bound to a copy of the current context, for work handed to a thread or an executor:
    spans it records nest under the caller's span (``instrument("threads")`` does this for every submit)."""
    from llmpulse.agent.integrations.threads import in_current_context as _bind

    return _bind(fn)


def response_text(response: Any) -> str | None:
    """The answer text of a provider response (OpenAI, Anthropic, a dict of their shapes), as ``@observe``
    records it; None for a value it cannot read. For code that scores what an LLM function returned."""
    from llmpulse.agent.enrich.providers import parse_response

    try:
        parsed = parse_response(response)
    except Exception:
        return None
    return parsed.output_text if parsed is not None else None


def is_configured() -> bool:
    return _state.pipeline is not None


def flush(timeout: float = 30.0) -> bool:
    """Export everything recorded so far; True when it all reached the store."""
    pipeline = _state.pipeline
    return True if pipeline is None else pipeline.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush within ``timeout`` seconds and stop; afterwards ``@observe`` is a no-op again."""
    with _configure_lock:
        pipeline, _state.pipeline = _state.pipeline, None
    return True if pipeline is None else pipeline.shutdown(timeout)


def stats() -> Stats:
    """Counters: enqueued, exported, spooled, replayed, dropped (by reason), queue and spool levels; calls
    with no known price (``unknown_model_cost``) and streams that reported no usage (``streams_without_usage``:
    recorded with NULL tokens and cost)."""
    pipeline = _state.pipeline
    return Stats() if pipeline is None else pipeline.snapshot()


def feedback(
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    name: str = "user_feedback",
    score: float | None = None,
    label: str | None = None,
    comment: str | None = None,
    user_id: str | None = None,
    source: str = "human",
    attributes: Mapping[str, Any] | None = None,
) -> str | None:
    """Record human feedback (a score, a label and/or a comment) on a trace or one of its spans.

    Without ``trace_id`` the feedback applies to the running ``@observe`` call. Returns the feedback id,
    or None when not configured. Bad arguments raise ``ValueError`` (they are the caller's bug).
    """
    if trace_id is None:
        ids = current_ids()
        if ids is None:
            raise ValueError("feedback() needs trace_id= when called outside an @observe call")
        trace_id, span_id = ids[0], span_id or ids[1]
    trace_id = _hex_id(trace_id, 32, "trace_id")
    span_id = _hex_id(span_id, 16, "span_id") if span_id else ""
    if score is None and label is None and comment is None:
        raise ValueError("feedback() needs at least one of score=, label= or comment=")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
            raise ValueError(f"feedback score must be a number, got {score!r}")
    pipeline = _state.pipeline
    if pipeline is None:
        return None
    feedback_id = uuid.uuid4().hex
    pipeline.emit(
        FeedbackRecord(
            timestamp_ms=time.time_ns() // 1_000_000,
            feedback_id=feedback_id,
            trace_id=trace_id,
            span_id=span_id,
            name=name,
            score=float(score) if score is not None else None,
            label=label or "",
            comment=comment or "",
            user_id=user_id or "",
            source=source,
            attributes={str(k): str(v) for k, v in (attributes or {}).items()},
        )
    )
    return feedback_id


def _hex_id(value: str, length: int, name: str) -> str:
    text = str(value).strip().lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{name} must be {length} hex characters, got {value!r}")
    return text
