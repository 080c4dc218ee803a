"""Rows for ClickHouse and the writer that inserts them.

Spans become ``otel_traces`` rows exactly as the OpenTelemetry Collector's ClickHouse exporter writes
them (hex ids, ``Client``/``Internal`` kinds, ``Unset``/``Error`` status, attribute values as strings;
shared/reference/standards.md section 2.1), so our rows and a collector's rows are indistinguishable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from . import _json
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
ROW_FORMAT = "JSONCompactEachRow"  # one JSON array per row, in the batch's column order
TRACE_ROW_COLUMNS = [c for c in TRACE_COLUMNS if c != "TraceState" and not c.startswith("Links.")]  # rest default
# Read typed JSON attribute values as their JSON text, so Map(String, String) gets the collector's strings.
INSERT_SETTINGS = {
    "async_insert": 0,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    "input_format_json_read_objects_as_strings": 1,
}


def attribute_string(value: Any) -> str:
    """The collector's ``pcommon.Value.AsString()``: bools lower-case, numbers decimal, lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _json.dumps(value)


def _stringify(attributes: Mapping[str, Any]) -> dict[str, str]:
    return {key: value if type(value) is str else attribute_string(value) for key, value in attributes.items()}


_EMPTY: list[Any] = []  # shared, never mutated
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def new_token() -> str:
    return uuid.uuid4().hex


# ClickHouse error codes that mean "this data can never be inserted" (not "the store is unavailable"):
# parse and type errors, wrong columns, values out of range. Retrying such a batch would block the spool.
_DATA_ERROR_CODES = frozenset({6, 16, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 168, 190, 321, 407, 410, 1001})
_ERROR_CODE = re.compile(r"Code: (\d+)")


def rejects_data(exc: BaseException) -> int | None:
    """The ClickHouse error code when ``exc`` says the rows themselves are bad, else None."""
    match = _ERROR_CODE.search(str(exc)[:2000])
    if match and int(match.group(1)) in _DATA_ERROR_CODES:
        return int(match.group(1))
    return None


_DATETIME64_TEXT_FROM = 1_000_000_000_000_000_000  # 2001-09-09: from here the seconds have ten digits


def datetime64(ns: int) -> str | int | float:
    """A DateTime64(9) value as JSON input formats read it exactly: seconds, a dot, nine digits.

    Before 2001-09-09 the seconds have fewer than ten digits and ClickHouse would read the text as a
    date; such instants (in practice 0, OTLP's "unset") are written as a JSON number instead.
    """
    if ns >= _DATETIME64_TEXT_FROM:
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    return ns // 1_000_000_000 if ns % 1_000_000_000 == 0 else ns / 1e9


_ROW_OPTIONS = orjson.OPT_APPEND_NEWLINE  # keys are str by construction; anything odd takes the fallback


def _span_ids(span: FinishedSpan) -> tuple[str, str, str]:
    """Trace, span and parent ids in the exporter's hex form (empty parent for a root span)."""
    return f"{span.trace_id:032x}", f"{span.span_id:016x}", f"{span.parent_id:016x}" if span.parent_id else ""


def row_bytes(row: list[Any]) -> bytes:
    try:
        return orjson.dumps(row, default=str, option=_ROW_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits: the slow, total path
        return (_json.dumps([_plain(v) for v in row]) + "\n").encode()


class RowBuffer:
    """JSONCompactEachRow rows appended to one growing buffer, the payload of a batch.

    Why not a list of per-row ``bytes`` joined at the end: orjson returns each row in a buffer of its
    own, and keeping thousands of them alive costs a fresh memory page per row (one minor page fault
    per kept result, 3-5 µs each on this project's VMs). Copying each row into one buffer frees
    orjson's at once, so its memory is reused.
    """

    __slots__ = ("count", "data")

    def __init__(self) -> None:
        self.data = bytearray()
        self.count = 0

    def append(self, row: list[Any]) -> None:
        self.data += row_bytes(row)
        self.count += 1


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): attribute_string(v) for k, v in value.items()}
    return value


def spans_to_batch(
    spans: Iterable[FinishedSpan], *, service_name: str, resource: Mapping[str, str], scope_version: str
) -> Batch:
    """Serialize finished spans as ``otel_traces`` rows in JSONCompactEachRow (orjson, in C).

    Attribute values stay typed in the JSON; the insert settings make ClickHouse store numbers, bools,
    arrays and objects as their JSON text, which is the collector's ``AsString()`` form. The engine parses
    the rows with the GIL released, so the export thread keeps enriching meanwhile.
    """
    rows = RowBuffer()
    add_span_rows(rows, spans, service_name=service_name, resource=resource, scope_version=scope_version)
    return Batch("otel_traces", TRACE_ROW_COLUMNS, rows.data, new_token(), rows.count)


def add_span_rows(
    rows: RowBuffer,
    spans: Iterable[FinishedSpan],
    *,
    service_name: str,
    resource: Mapping[str, str],
    scope_version: str,
) -> None:
    """Append finished spans to ``rows`` as ``otel_traces`` rows (see ``spans_to_batch``).

    The row's common parts are written inline (times, hex ids, the orjson call): this runs per span.
    """
    resource_map = dict(resource)
    data = rows.data
    dumps, options = orjson.dumps, _ROW_OPTIONS
    count = 0
    for span in spans:
        events = span.events
        start = span.start_ns
        row = [  # in TRACE_ROW_COLUMNS order
            f"{start // 1_000_000_000}.{start % 1_000_000_000:09d}"
            if start >= _DATETIME64_TEXT_FROM
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


def spans_to_columns(
    spans: Iterable[FinishedSpan], *, service_name: str, resource: Mapping[str, str], scope_version: str
) -> list[list[Any]]:
    """The same rows pivoted for clickhouse-connect's column-oriented ``insert`` (attribute values as strings).

    The pipeline itself sends JSONCompactEachRow; this form is the baseline in ``bench/ingest.py`` and a
    convenience for users who insert spans themselves.
    """
    columns: list[list[Any]] = [[] for _ in TRACE_COLUMNS]
    resource_map = dict(resource)
    for span in spans:
        values = (
            span.start_ns,
            *_span_ids(span),
            "",
            span.name,
            span.kind,
            service_name,
            resource_map,
            "llmpulse",
            scope_version,
            _stringify(span.attributes),
            max(span.end_ns - span.start_ns, 0),
            span.status_code,
            span.status_message,
            [e[0] for e in span.events],
            [e[1] for e in span.events],
            [_stringify(e[2]) for e in span.events],
            [],
            [],
            [],
            [],
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


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
            insert_batch(self._client, self.schema.database, batch)
        except BaseException:
            if not self.target.embedded:
                self.reset()  # a server connection may be broken: reconnect next time
            raise

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


def rows_to_batch(table: str, rows: Sequence[Mapping[str, Any]]) -> Batch:
    """Rows given as mappings (one table, the same keys in every row) as a JSONCompactEachRow batch.

    Collectors and the sidecar hand plain data here: numbers, strings, ``None`` (stored as NULL in
    Nullable columns), lists, dicts (Map columns), and timezone-aware ``datetime`` values, which are
    written as epoch seconds so the stored instant never depends on the server's time zone.
    """
    if not rows:
        raise ValueError("rows_to_batch needs at least one row")
    columns = list(rows[0])
    buffer = RowBuffer()
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"every row for {table} must have the columns {columns}, got {list(row)}")
        buffer.append([_cell(row[c]) for c in columns])
    return Batch(table, columns, buffer.data, new_token(), buffer.count)


def insert_batch(client: Any, database: str, batch: Batch, settings: Mapping[str, Any] | None = None) -> None:
    """One JSONCompactEachRow insert of ``batch`` into ``database``.

    By default with the pipeline's insert settings and the batch's deduplication token, so a repeated
    insert of the same batch is a no-op; ``settings`` replaces both.
    """
    client.raw_insert(
        f"{database}.{batch.table}",
        column_names=batch.columns,
        insert_block=batch.payload,
        fmt=ROW_FORMAT,
        settings={**INSERT_SETTINGS, "insert_deduplication_token": batch.token} if settings is None else settings,
    )


def insert_rows(
    client: Any,
    database: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows given as mappings (see ``rows_to_batch``) in one insert (see ``insert_batch``); how many."""
    if not rows:
        return 0
    batch = rows_to_batch(table, rows)
    insert_batch(client, database, batch, settings)
    return batch.count


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return datetime64((value - _EPOCH) // timedelta(microseconds=1) * 1000)
    return value
