"""Received OTLP request bodies to ClickHouse rows: pure functions, no I/O (the receiver owns HTTP).

Decoding uses opentelemetry-proto's generated messages (protobuf) and ``json_format`` (OTLP/JSON)
after turning the hex ids OTLP/JSON uses into the base64 the protobuf JSON mapping expects: OTLP/JSON
writes trace and span ids as hex (the OTLP specification's one deviation from the protobuf JSON
mapping), and fed to ``json_format`` directly a hex trace id silently becomes a 24-byte id.

Rows follow the OpenTelemetry Collector ClickHouse exporter's encodings: hex ids, ``Server``/``Client``
kinds, ``Unset``/``Ok``/``Error`` status, and attribute values as the collector's ``AsString()``.
Attribute values stay typed in the JSON rows; the insert settings make ClickHouse store their JSON
text, exactly as for the SDK's own spans.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from llmpulse.agent import semconv as sc
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.store.rows import Batch, RowBuffer
from llmpulse.agent.store.rows import datetime64 as _datetime64
from llmpulse.agent.store.schema.metrics import METRIC_COLUMNS
from llmpulse.agent.store.schema.traces import TRACE_COLUMNS
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .conventions import LLM_OPERATIONS, RETRIEVAL, reported_cost, to_semconv
from .genai_content import CONTENT_EVENTS, content_from_events, has_content

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS = ("Unset", "Ok", "Error")
MAX_TIME_NS = 2**63 - 1  # DateTime64(9) is an Int64 of nanoseconds: 2262-04-11T23:47:16.854775807Z
# A row's own time (span start, metric point time) goes through DateTime (UInt32 seconds, to
# 2106-02-07T06:28:15Z) in the TTL, the partition key and the trace-id index. Past it toDateTime() wraps
# round to 1970, and so does the TTL's start + N days near it: the TTL then deletes the row as it is
# written. 2100-01-01 leaves room for TTLs up to six years; later times are refused with a 400.
MAX_DATETIME_NS = 4_102_444_800 * 1_000_000_000  # 2100-01-01T00:00:00Z
_LAST_DATETIME = "2100-01-01T00:00:00Z"
_LAST_DATETIME64 = "2262-04-11T23:47:16Z"
_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId"))
_ATTRS = TRACE_COLUMNS.index("SpanAttributes")


@dataclass
class SpanRow:
    """An ``otel_traces`` row (a list, not yet encoded) of a GenAI or retrieval span, and its times (ns)."""

    row: list[Any]
    start_ns: int
    end_ns: int

    @property
    def attrs(self) -> dict[str, Any]:
        return self.row[_ATTRS]


class PayloadError(ValueError):
    """The body cannot be decoded or is invalid OTLP: HTTP 400, and nothing of it is stored."""


class PayloadTooLarge(ValueError):
    """The body is over the size limit (after decompression): HTTP 413."""


# --- bytes ---------------------------------------------------------------------------------------


class UnsupportedEncoding(ValueError):
    """A ``Content-Encoding`` the receiver does not speak: the one decode error answered 415."""


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (identity, gzip or deflate), never producing more than ``limit`` bytes.

    A gzip body may hold several members (RFC 1952 2.2); all are read, the limit applying to their
    sum, so a bomb split across members is cut off too. Bytes after the last stream are refused.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"body of {len(body)} bytes is over the limit of {limit} bytes")
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; supported: gzip, deflate, identity")
    parts: list[bytes] = []
    size, rest = 0, body
    try:
        while True:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            data = inflater.decompress(rest, limit - size + 1)
            if size + len(data) > limit or inflater.unconsumed_tail:
                raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
            data += inflater.flush()
            if not inflater.eof:
                raise PayloadError(f"{encoding} body is truncated")
            size += len(data)
            if size > limit:
                raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
            parts.append(data)
            rest = inflater.unused_data
            if not rest:
                break
            if encoding != "gzip" or rest[:2] != b"\x1f\x8b":
                raise PayloadError(f"{len(rest)} bytes of trailing data after the {encoding} stream")
    except zlib.error as exc:
        raise PayloadError(f"body is not valid {encoding} data: {exc}") from None
    return b"".join(parts)


def _parse(message_type: type, body: bytes, content_type: str) -> Any:
    if content_type == PROTOBUF:
        try:
            return message_type.FromString(body)
        except DecodeError as exc:
            raise PayloadError(f"body is not a valid protobuf {message_type.__name__}: {exc}") from None
    try:
        document = orjson.loads(body)  # orjson refuses nesting deeper than 1024
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PayloadError(f"OTLP/JSON body must be an object, got {type(document).__name__}")
    try:
        _hex_ids_to_base64(document)
    except RecursionError:
        raise PayloadError("OTLP/JSON body is nested too deeply") from None
    try:
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise PayloadError(f"body is not a valid OTLP/JSON {message_type.__name__}: {exc}") from None


def parse_traces(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    return _parse(ExportTraceServiceRequest, body, content_type)


def parse_metrics(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    return _parse(ExportMetricsServiceRequest, body, content_type)


def _hex_ids_to_base64(node: Any, path: str = "") -> None:
    """OTLP/JSON ids are hex (case-insensitive); the protobuf JSON mapping reads bytes as base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise PayloadError(f"{path}{key} is not a hex id: {value[:64]!r}") from None
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value, f"{path}{key}.")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, (dict, list)):
                _hex_ids_to_base64(item, f"{path[:-1]}[{index}].")


# --- values --------------------------------------------------------------------------------------


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (bytes as base64, as the collector's ``AsString``)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value":
        number = value.double_value
        return number if number - number == 0.0 else _NON_FINITE_TEXT[str(number)]
    return getattr(value, kind)


# JSON has no NaN or infinity (orjson writes null, which the Map(String, String) column stores as ''):
# attribute values get the collector's AsString() text instead, metric values the text ClickHouse reads
# back into a Float64 as NaN and infinity.
_NON_FINITE_TEXT = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}
_NON_FINITE_FLOAT = {"nan": "nan", "inf": "inf", "-inf": "-inf"}


def attributes(key_values: Iterable[Any]) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict; the fast path reads scalar values without recursion."""
    out = {}
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            out[kv.key] = value.string_value
        elif kind in ("int_value", "bool_value"):
            out[kv.key] = getattr(value, kind)
        elif kind == "double_value":
            number = value.double_value
            out[kv.key] = number if number - number == 0.0 else _NON_FINITE_TEXT[str(number)]
        else:
            out[kv.key] = any_value(value)
    return out


# --- traces --------------------------------------------------------------------------------------


def _bad_span(span: Any, where: str) -> str | None:
    """Why a span is permanently invalid (ids of the wrong length, end before start), or None."""
    if len(span.trace_id) != 16:
        return f"{where}: traceId must be 16 bytes, got {len(span.trace_id)}"
    if len(span.span_id) != 8:
        return f"{where}: spanId must be 8 bytes, got {len(span.span_id)}"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"{where}: parentSpanId must be 8 bytes or empty, got {len(span.parent_span_id)}"
    if span.end_time_unix_nano and span.end_time_unix_nano < span.start_time_unix_nano:
        return f"{where}: endTimeUnixNano is before startTimeUnixNano"
    if span.start_time_unix_nano > MAX_DATETIME_NS:
        return (
            f"{where}: startTimeUnixNano {span.start_time_unix_nano} is after {_LAST_DATETIME}, the latest time "
            "the store's DateTime columns (TTL, partition, trace-id index; they end in 2106) take"
        )
    if span.end_time_unix_nano > MAX_TIME_NS:
        return f"{where}: endTimeUnixNano {span.end_time_unix_nano} is after {_LAST_DATETIME64}, past DateTime64(9)"
    for e, event in enumerate(span.events):
        if event.time_unix_nano > MAX_TIME_NS:
            return f"{where}.events[{e}]: timeUnixNano {event.time_unix_nano} is past what DateTime64(9) holds"
    return None


_NO_ITEMS: list[Any] = []  # shared, never mutated


def trace_rows(
    request: ExportTraceServiceRequest,
    *,
    prices: PriceTable | None = None,
    on_unpriced: Callable[[], None] = lambda: None,
    redaction: Redaction | None = None,
    on_genai: Callable[[list[SpanRow]], None] | None = None,
) -> Batch:
    """Every span of the request as an ``otel_traces`` row, or ``PayloadError`` for the whole request.

    With ``redaction`` (the SDK's engine), string attribute values, event attributes (exception.message,
    exception.stacktrace) and the status message are redacted; resource attributes are kept as sent.

    Spans of other GenAI conventions (OpenInference, OpenLLMetry, OpenLIT) get the semconv attributes
    next to their own (``conventions``), and content sent as span events (semconv 1.27's
    ``gen_ai.content.prompt``) becomes the semconv message attributes.

    GenAI spans from other SDKs carry tokens but no cost: when ``prices`` knows the model, the row gets
    the same ``llmpulse.cost.usd`` attribute the SDK writes, so ``llm_calls`` has a cost for them too.

    ``on_genai`` (the receiver's join) gets the request's LLM and retrieval spans, once all spans are
    valid and before their rows are encoded, and may change their attributes.
    """
    rows = RowBuffer()
    append = rows.append
    held: list[SpanRow] = []
    kinds, statuses = _KINDS, _STATUS
    for r, resource_spans in enumerate(request.resource_spans):
        resource = attributes(resource_spans.resource.attributes)
        service = resource.get("service.name", "")
        service = service if isinstance(service, str) else str(service)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope
            scope_name, scope_version = scope.name, scope.version
            for i, span in enumerate(scope_spans.spans):
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or (parent_id and len(parent_id) != 8)
                    or (end and end < start)
                    or start > MAX_DATETIME_NS
                    or end > MAX_TIME_NS
                    or (span.events and max(e.time_unix_nano for e in span.events) > MAX_TIME_NS)
                ):
                    raise PayloadError(_bad_span(span, f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"))
                attrs = attributes(span.attributes)
                events, links, status = span.events, span.links, span.status
                # mapped before redaction, so the mapped content is redacted with the rest
                to_semconv(attrs, start, ((e.time_unix_nano, e.name) for e in events) if events else ())
                if redaction is not None:
                    attrs = _redacted(attrs, redaction)
                if events:
                    event_attrs = [
                        attributes(e.attributes) if redaction is None else redaction.value(attributes(e.attributes))
                        for e in events
                    ]
                    _content_from_span_events(attrs, events, event_attrs)
                if prices is not None and sc.COST_USD not in attrs:
                    _add_cost(attrs, prices, on_unpriced)
                kind, code = span.kind, status.code
                row = [
                    _datetime64(start),
                    trace_id.hex(),
                    span_id.hex(),
                    parent_id.hex(),
                    span.trace_state,
                    span.name,
                    kinds[kind] if 0 <= kind < 6 else "Unspecified",
                    service,
                    resource,
                    scope_name,
                    scope_version,
                    attrs,
                    end - start if end > start else 0,
                    statuses[code] if 0 <= code < 3 else "Unset",
                    redaction(status.message) if redaction is not None and status.message else status.message,
                ]
                if events:
                    row += ([_datetime64(e.time_unix_nano) for e in events], [e.name for e in events], event_attrs)
                else:
                    row += (_NO_ITEMS, _NO_ITEMS, _NO_ITEMS)
                if links:
                    row += (
                        [link.trace_id.hex() for link in links],
                        [link.span_id.hex() for link in links],
                        [link.trace_state for link in links],
                        [attributes(link.attributes) for link in links],
                    )
                else:
                    row += (_NO_ITEMS, _NO_ITEMS, _NO_ITEMS, _NO_ITEMS)
                if on_genai is not None and _joins(attrs.get(sc.GEN_AI_OPERATION_NAME)):
                    held.append(SpanRow(row, start, end))
                else:
                    append(row)
    if held:
        on_genai(held)  # type: ignore[misc]  # held is only filled when on_genai is given
        for span_row in held:
            append(span_row.row)
    return Batch("otel_traces", TRACE_COLUMNS, rows.data, "", rows.count)


# Numbers the redaction takes for secrets because their key ends in "token": OpenLIT's server timings.
_TIMINGS = ("gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token")


def _redacted(attrs: dict[str, Any], redaction: Redaction) -> dict[str, Any]:
    """``attrs`` redacted, OpenLIT's timings kept when they are numbers (a number there is no secret)."""
    redacted = redaction.value(attrs)
    for key in _TIMINGS:
        value = attrs.get(key)
        if type(value) in (int, float):
            redacted[key] = value
    return redacted


_JOINED_OPERATIONS = LLM_OPERATIONS | {RETRIEVAL}


def _joins(operation: Any) -> bool:
    return operation in _JOINED_OPERATIONS


def _content_from_span_events(attrs: dict[str, Any], events: Any, event_attrs: list[dict[str, Any]]) -> None:
    """Content that span events carry (semconv 1.27's ``gen_ai.content.prompt``/``completion``)."""
    if has_content(attrs):
        return
    found = [
        (e.name, a, a)
        for e, a in zip(events, event_attrs, strict=True)
        if e.name in CONTENT_EVENTS and not _SPAN_EVENT_CONTENT.isdisjoint(a)
    ]
    if found:
        content, extra = content_from_events(found)
        for key, value in (*content.items(), *extra.items()):
            attrs.setdefault(key, value)


# The attributes that hold content on a span event (an event of the name with none, e.g. {"index": 0}, is skipped)
_SPAN_EVENT_CONTENT = frozenset(
    ("gen_ai.prompt", "gen_ai.completion", "content", "message", sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES)
)


def _int(value: Any) -> int | None:
    kind = type(value)
    if kind is str and value.isdigit() and len(value) < 20:
        value, kind = int(value), int
    if kind is int and 0 <= value <= _MAX_TOKENS:
        return value
    return None  # absent, not a count, or too big to price: the span counts as unpriced


_MAX_TOKENS = 2**63 - 1  # a larger "count" would overflow the float cost (OverflowError, a 500 before)


def _add_cost(attrs: dict[str, Any], prices: PriceTable, on_unpriced: Callable[[], None]) -> None:
    """The SDK's ``llmpulse.cost.usd`` for a GenAI span from another SDK (``PriceTable.span_cost``)."""
    get = attrs.get
    input_tokens = _int(get(sc.GEN_AI_USAGE_INPUT_TOKENS))
    output_tokens = _int(get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
    if input_tokens is None and output_tokens is None:
        return
    cost = prices.span_cost(
        (get(sc.GEN_AI_RESPONSE_MODEL), get(sc.GEN_AI_REQUEST_MODEL)),
        input_tokens,
        output_tokens,
        _int(get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
        _int(get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)),
    )
    if cost is None:
        cost = reported_cost(attrs)
    if cost is None:
        on_unpriced()
    else:
        attrs[sc.COST_USD] = cost


# --- metrics -------------------------------------------------------------------------------------


def _float(number: float) -> float | str:
    """A Float64 cell: NaN and infinities as the text ClickHouse reads back as such (JSON has no literal)."""
    return number if number - number == 0.0 else _NON_FINITE_FLOAT[str(number)]


def _floats(numbers: Iterable[float]) -> list[float | str]:
    values: list[Any] = list(numbers)
    if any(v - v != 0.0 for v in values):
        return [_float(v) for v in values]
    return values


def _number(point: Any) -> float | str:
    kind = point.WhichOneof("value")
    return _float(float(getattr(point, kind))) if kind else 0.0


def _exemplars(points_exemplars: Any, seconds: bool) -> list[Any]:
    stamp = _seconds if seconds else _datetime64
    return [
        [attributes(e.filtered_attributes) for e in points_exemplars],
        [stamp(e.time_unix_nano) for e in points_exemplars],
        [_number(e) for e in points_exemplars],
        [e.span_id.hex() for e in points_exemplars],
        [e.trace_id.hex() for e in points_exemplars],
    ]


def _point_columns(point: Any, stamp: Callable[[int], Any]) -> list[Any]:
    """The columns every data point has: its attributes, start time and time."""
    return [attributes(point.attributes), stamp(point.start_time_unix_nano), stamp(point.time_unix_nano)]


def _seconds(ns: int) -> int:
    return ns // 1_000_000_000


_JSON_KIND = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}


def _bad_point_time(point: Any, seconds: bool, where: str) -> None:
    """``PayloadError`` naming the field when a time is past what the point's table holds.

    ``timeUnixNano`` is the row's TTL and partition time (DateTime); the start time and exemplar
    times are DateTime64(9) columns (to 2262), except in the exponential-histogram table, whose times
    are all DateTime.
    """
    other_limit, other_last = (MAX_DATETIME_NS, _LAST_DATETIME) if seconds else (MAX_TIME_NS, _LAST_DATETIME64)
    if point.time_unix_nano > MAX_DATETIME_NS:
        raise PayloadError(
            f"{where}: timeUnixNano {point.time_unix_nano} is after {_LAST_DATETIME}, the latest time the "
            "store's DateTime columns (TTL, partition; they end in 2106) take"
        )
    if point.start_time_unix_nano > other_limit:
        raise PayloadError(f"{where}: startTimeUnixNano {point.start_time_unix_nano} is after {other_last}")
    for e, exemplar in enumerate(getattr(point, "exemplars", ())):
        if exemplar.time_unix_nano > other_limit:
            raise PayloadError(f"{where}.exemplars[{e}]: timeUnixNano {exemplar.time_unix_nano} is after {other_last}")


def metric_rows(request: ExportMetricsServiceRequest) -> list[Batch]:
    """Data points of every metric as rows of the collector's ``otel_metrics_*`` tables.

    A time past what its column holds is a ``PayloadError`` naming the field (the whole request is
    refused, as for spans); NaN and infinite values are stored as such.
    """
    lines = {table: RowBuffer() for table in METRIC_COLUMNS}
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = attributes(resource_metrics.resource.attributes)
        service = resource.get("service.name", "")
        service = service if isinstance(service, str) else str(service)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope = scope_metrics.scope
            scope_attributes = attributes(scope.attributes)
            for m, metric in enumerate(scope_metrics.metrics):
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                seconds = kind == "exponential_histogram"  # that table's times are DateTime
                stamp = _seconds if seconds else _datetime64

                head = [
                    resource,
                    resource_metrics.schema_url,
                    scope.name,
                    scope.version,
                    scope_attributes,
                    scope.dropped_attributes_count,
                    scope_metrics.schema_url,
                    service,
                    metric.name,
                    metric.description,
                    metric.unit,
                ]

                for p, point in enumerate(data.data_points):
                    if (
                        point.time_unix_nano > MAX_DATETIME_NS
                        or point.start_time_unix_nano > MAX_DATETIME_NS
                        or (
                            kind != "summary"  # the one point type without exemplars
                            and point.exemplars
                            and max(e.time_unix_nano for e in point.exemplars) > MAX_DATETIME_NS
                        )
                    ):
                        where = (
                            f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}].{_JSON_KIND[kind]}.dataPoints[{p}]"
                        )
                        _bad_point_time(point, seconds, where)
                    if kind == "gauge":
                        row = [
                            *head,
                            *_point_columns(point, stamp),
                            _number(point),
                            point.flags,
                            *_exemplars(point.exemplars, False),
                        ]
                        lines["otel_metrics_gauge"].append(row)
                    elif kind == "sum":
                        row = [
                            *head,
                            *_point_columns(point, stamp),
                            _number(point),
                            point.flags,
                            *_exemplars(point.exemplars, False),
                            data.aggregation_temporality,
                            data.is_monotonic,
                        ]
                        lines["otel_metrics_sum"].append(row)
                    elif kind == "histogram":
                        row = [
                            *head,
                            *_point_columns(point, stamp),
                            point.count,
                            _float(point.sum),
                            list(point.bucket_counts),
                            _floats(point.explicit_bounds),
                            *_exemplars(point.exemplars, False),
                            point.flags,
                            _float(point.min),
                            _float(point.max),
                            data.aggregation_temporality,
                        ]
                        lines["otel_metrics_histogram"].append(row)
                    elif kind == "exponential_histogram":
                        row = [
                            *head,
                            *_point_columns(point, stamp),
                            point.count,
                            _float(point.sum),
                            point.scale,
                            point.zero_count,
                            point.positive.offset,
                            list(point.positive.bucket_counts),
                            point.negative.offset,
                            list(point.negative.bucket_counts),
                            *_exemplars(point.exemplars, True),
                            point.flags,
                            _float(point.min),
                            _float(point.max),
                            data.aggregation_temporality,
                        ]
                        lines["otel_metrics_exp_histogram"].append(row)
                    elif kind == "summary":
                        row = [
                            *head,
                            *_point_columns(point, stamp),
                            point.count,
                            _float(point.sum),
                            _floats(q.quantile for q in point.quantile_values),
                            _floats(q.value for q in point.quantile_values),
                            point.flags,
                        ]
                        lines["otel_metrics_summary"].append(row)
    return [
        Batch(table, METRIC_COLUMNS[table], rows.data, "", rows.count) for table, rows in lines.items() if rows.count
    ]


def data_point_count(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


__all__ = [
    "JSON",
    "PROTOBUF",
    "PayloadError",
    "PayloadTooLarge",
    "SpanRow",
    "data_point_count",
    "decompress",
    "metric_rows",
    "parse_metrics",
    "parse_traces",
    "trace_rows",
]
