"""Enrichment from inside a call: fields for the running span, or for every span of a block, and its ids."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from .spans import SpanRecord, current_span, scoped_attributes

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
