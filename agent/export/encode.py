"""The SDK's records as store rows: finished spans as ``otel_traces`` rows, feedback as ``feedback`` rows.

Spans become ``otel_traces`` rows exactly as the OpenTelemetry Collector's ClickHouse exporter writes
them (hex ids, ``Client``/``Internal`` kinds, ``Unset``/``Error`` status, attribute values as the
collector's ``AsString()`` strings), so our rows and a collector's rows are indistinguishable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.store.rows import (
    DATETIME64_TEXT_FROM,
    ROW_OPTIONS,
    Batch,
    RowBuffer,
    datetime64,
    new_token,
    row_bytes,
)
from llmpulse.agent.store.schema.traces import FEEDBACK_COLUMNS, TRACE_ROW_COLUMNS

_EMPTY: list[Any] = []  # shared, never mutated


def add_span_rows(
    rows: RowBuffer,
    spans: Iterable[FinishedSpan],
    *,
    service_name: str,
    resource: Mapping[str, str],
    scope_version: str,
) -> None:
    """Append finished spans to ``rows`` as ``otel_traces`` rows, in ``TRACE_ROW_COLUMNS`` order.

    Attribute values stay typed in the JSON; the insert settings make ClickHouse store numbers, bools,
    arrays and objects as their JSON text. The engine parses the rows with the GIL released, so the
    export thread keeps enriching meanwhile. The row's common parts are written inline (times, hex ids,
    the orjson call): this runs per span.
    """
    resource_map = dict(resource)
    data = rows.data
    dumps, options = orjson.dumps, ROW_OPTIONS
    count = 0
    for span in spans:
        events = span.events
        start = span.start_ns
        row = [  # in TRACE_ROW_COLUMNS order
            f"{start // 1_000_000_000}.{start % 1_000_000_000:09d}"
            if start >= DATETIME64_TEXT_FROM
            else datetime64(start),
            f"{span.trace_id:032x}",
            f"{span.span_id:016x}",
            f"{span.parent_id:016x}" if span.parent_id else "",
            span.name,
            span.kind,
            service_name,
            resource_map,
            "llmpulse",
            scope_version,
            span.attributes,
            max(span.end_ns - start, 0),
            span.status_code,
            span.status_message,
            [datetime64(e[0]) for e in events] if events else _EMPTY,
            [e[1] for e in events] if events else _EMPTY,
            [e[2] for e in events] if events else _EMPTY,
        ]
        try:
            data += dumps(row, default=str, option=options)
        except (TypeError, orjson.JSONEncodeError):
            data += row_bytes(row)
        count += 1
    rows.count += count


def span_batch(rows: RowBuffer) -> Batch:
    """The ``otel_traces`` rows gathered in ``rows`` as one batch with a fresh token."""
    return Batch("otel_traces", TRACE_ROW_COLUMNS, rows.data, new_token(), rows.count)


@dataclass
class FeedbackRecord:
    """One piece of human feedback on a trace or span (``feedback()``), queued like a span record."""

    timestamp_ms: int
    feedback_id: str
    trace_id: str
    span_id: str
    name: str
    score: float | None
    label: str
    comment: str
    user_id: str
    source: str
    attributes: dict[str, str]


def feedback_to_batch(records: Iterable[FeedbackRecord], *, service_name: str) -> Batch:
    rows = RowBuffer()
    for r in records:
        rows.append(
            [  # in FEEDBACK_COLUMNS order
                f"{r.timestamp_ms // 1000}.{r.timestamp_ms % 1000:03d}",
                r.feedback_id,
                r.trace_id,
                r.span_id,
                service_name,
                r.name,
                r.score,
                r.label,
                r.comment,
                r.user_id,
                r.source,
                r.attributes,
            ]
        )
    return Batch("feedback", FEEDBACK_COLUMNS, rows.data, new_token(), rows.count)
