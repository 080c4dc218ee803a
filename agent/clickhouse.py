"""Rows for ClickHouse and the writer that inserts them.

Spans become ``otel_traces`` rows exactly as the OpenTelemetry Collector's ClickHouse exporter writes
them (hex ids, ``Client``/``Internal`` kinds, ``Unset``/``Error`` status, attribute values as strings;
shared/reference/standards.md section 2.1), so our rows and a collector's rows are indistinguishable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .dsn import StoreTarget
from .enrich import FinishedSpan
from .prices import PriceTable
from .schema import SchemaOptions, apply
from .spool import Batch

TRACE_COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
]
TRACE_TYPES = [
    "DateTime64(9)",
    "String",
    "String",
    "String",
    "String",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "Map(LowCardinality(String), String)",
    "String",
    "String",
    "Map(LowCardinality(String), String)",
    "UInt64",
    "LowCardinality(String)",
    "String",
    "Array(DateTime64(9))",
    "Array(LowCardinality(String))",
    "Array(Map(LowCardinality(String), String))",
    "Array(String)",
    "Array(String)",
    "Array(String)",
    "Array(Map(LowCardinality(String), String))",
]
FEEDBACK_COLUMNS = [
    "Timestamp",
    "FeedbackId",
    "TraceId",
    "SpanId",
    "ServiceName",
    "Name",
    "Score",
    "Label",
    "Comment",
    "UserId",
    "Source",
    "Attributes",
]
FEEDBACK_TYPES = [
    "DateTime64(3)",
    "String",
    "String",
    "String",
    "LowCardinality(String)",
    "LowCardinality(String)",
    "Nullable(Float64)",
    "LowCardinality(String)",
    "String",
    "String",
    "LowCardinality(String)",
    "Map(LowCardinality(String), String)",
]
TYPES = {"otel_traces": TRACE_TYPES, "feedback": FEEDBACK_TYPES}


def attribute_string(value: Any) -> str:
    """The collector's ``pcommon.Value.AsString()``: bools lower-case, numbers decimal, lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _stringify(attributes: Mapping[str, Any]) -> dict[str, str]:
    return {key: value if type(value) is str else attribute_string(value) for key, value in attributes.items()}


def new_token() -> str:
    return uuid.uuid4().hex


def spans_to_batch(
    spans: Iterable[FinishedSpan], *, service_name: str, resource: Mapping[str, str], scope_version: str
) -> Batch:
    """Pivot finished spans into the exporter's column order (one list per column)."""
    columns: list[list[Any]] = [[] for _ in TRACE_COLUMNS]
    (ts, trace, span_id, parent, state, name, kind, service, res, scope, scope_ver, attrs, dur, status, message,
     ev_ts, ev_name, ev_attrs, l_trace, l_span, l_state, l_attrs) = columns  # fmt: skip
    resource_map = dict(resource)
    count = 0
    for span in spans:
        count += 1
        ts.append(span.start_ns)
        trace.append(f"{span.trace_id:032x}")
        span_id.append(f"{span.span_id:016x}")
        parent.append(f"{span.parent_id:016x}" if span.parent_id else "")
        state.append("")
        name.append(span.name)
        kind.append(span.kind)
        service.append(service_name)
        res.append(resource_map)
        scope.append("llmpulse")
        scope_ver.append(scope_version)
        attrs.append(_stringify(span.attributes))
        dur.append(max(span.end_ns - span.start_ns, 0))
        status.append(span.status_code)
        message.append(span.status_message)
        ev_ts.append([e[0] for e in span.events])
        ev_name.append([e[1] for e in span.events])
        ev_attrs.append([_stringify(e[2]) for e in span.events])
        l_trace.append([])
        l_span.append([])
        l_state.append([])
        l_attrs.append([])
    return Batch("otel_traces", list(TRACE_COLUMNS), columns, new_token(), count)


@dataclass
class FeedbackRecord:
    """One piece of human feedback on a trace or span."""

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
    columns: list[list[Any]] = [[] for _ in FEEDBACK_COLUMNS]
    count = 0
    for r in records:
        count += 1
        for column, value in zip(
            columns,
            (
                r.timestamp_ms,
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
            ),
            strict=True,
        ):
            column.append(value)
    return Batch("feedback", list(FEEDBACK_COLUMNS), columns, new_token(), count)


PRICE_COLUMNS = [
    "Model",
    "Provider",
    "InputPerMTok",
    "OutputPerMTok",
    "CacheReadPerMTok",
    "CacheWritePerMTok",
    "Source",
    "UpdatedAt",
]


def load_prices(client: Any, database: str, prices: PriceTable) -> int:
    """Write the price table in use (vendored plus overrides) to ``model_prices``, for dashboards and audits.

    ``model_prices`` is a ReplacingMergeTree keyed by model, so the latest load of a model wins.
    """
    now = datetime.now(timezone.utc)
    rows = [
        [p.model, p.provider or "", p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok,
         p.cache_write_per_mtok, p.source or "vendored", now]
        for p in prices.rows()
    ]  # fmt: skip
    if rows:
        client.insert("model_prices", rows, column_names=PRICE_COLUMNS, database=database)
    return len(rows)


class ClickHouseWriter:
    """Owns one clickhouse-connect client; applies the schema before the first insert."""

    def __init__(
        self, target: StoreTarget, schema: SchemaOptions, *, apply_schema: bool = True, prices: PriceTable | None = None
    ) -> None:
        self.target = target
        self.schema = schema
        self.apply_schema = apply_schema
        self.prices = prices
        self._client: Any = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Open the client and make sure the schema exists. Raises when the store is unreachable."""
        if self._client is not None:
            return
        client = self.target.client()
        try:
            if self.apply_schema:
                apply(client, self.schema)
                if self.prices is not None:
                    load_prices(client, self.schema.database, self.prices)
        except BaseException:
            _close(client)
            raise
        self._client = client

    def insert(self, batch: Batch) -> None:
        """Insert column-oriented; the batch token makes a repeated insert of the same batch a no-op."""
        self.connect()
        try:
            self._client.insert(
                batch.table,
                batch.data,
                column_names=batch.columns,
                column_type_names=TYPES.get(batch.table),
                database=self.schema.database,
                column_oriented=True,
                settings={
                    "insert_deduplication_token": batch.token,
                    "async_insert": 0,
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                },
            )
        except BaseException:
            if not self.target.embedded:
                self.reset()  # a server connection may be broken: reconnect next time
            raise

    def ping(self) -> bool:
        try:
            self.connect()
            self._client.command("SELECT 1")
            return True
        except Exception:
            return False

    def reset(self) -> None:
        client, self._client = self._client, None
        _close(client)

    close = reset


def _close(client: Any) -> None:
    if client is None:
        return
    try:
        client.close()
    except Exception:
        pass
