"""Received OTLP log requests to ``otel_logs`` rows and GenAI events: pure functions, no I/O.

Rows follow the OpenTelemetry Collector ClickHouse exporter's encodings (as ``otlp_decode`` does for
spans): hex ids, the record's time or else its observed time, the body and attribute values as the
collector's ``AsString()``. A log record that names a ``gen_ai.*`` event (``event_name``, or the older
``event.name`` attribute) and the span it belongs to is also handed to the join (``join.GenAIJoin``),
which adds its content to that span's ``llm_calls`` row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.store.rows import Batch, RowBuffer, attribute_string
from llmpulse.agent.store.rows import datetime64 as _datetime64
from llmpulse.agent.store.schema.logs import LOG_COLUMNS
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from .otlp_decode import _LAST_DATETIME, MAX_DATETIME_NS, PayloadError, _parse, any_value, attributes


@dataclass(frozen=True, slots=True)
class GenAIEvent:
    """A GenAI event of one span: what the join needs (ids as hex, values redacted and typed)."""

    trace_id: str
    span_id: str
    service: str
    scope: str
    name: str
    attributes: dict[str, Any]
    body: Any


def parse_logs(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    return _parse(ExportLogsServiceRequest, body, content_type)


def log_record_count(request: ExportLogsServiceRequest) -> int:
    return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)


def _body_text(value: Any) -> str:
    """The body as the collector's ``AsString()``: text as is, maps and lists as JSON."""
    return value if isinstance(value, str) else attribute_string(value)


def _bad_record(record: Any, where: str) -> str | None:
    if len(record.trace_id) not in (0, 16):
        return f"{where}: traceId must be 16 bytes or empty, got {len(record.trace_id)}"
    if len(record.span_id) not in (0, 8):
        return f"{where}: spanId must be 8 bytes or empty, got {len(record.span_id)}"
    for field in ("time_unix_nano", "observed_time_unix_nano"):
        if getattr(record, field) > MAX_DATETIME_NS:
            json_name = "timeUnixNano" if field == "time_unix_nano" else "observedTimeUnixNano"
            return (
                f"{where}: {json_name} {getattr(record, field)} is after {_LAST_DATETIME}, the latest time the "
                "store's DateTime columns (TTL, partition) take"
            )
    return None


def log_rows(
    request: ExportLogsServiceRequest, *, redaction: Redaction | None = None, received_ns: int | None = None
) -> tuple[Batch, list[GenAIEvent]]:
    """Every log record as an ``otel_logs`` row, and the GenAI events among them; ``PayloadError`` for the
    whole request when a record is invalid (ids of the wrong length, a time past what the table holds).

    A record's time is its ``timeUnixNano``, else its ``observedTimeUnixNano`` (the collector's rule), else
    ``received_ns`` (now): a record with neither would be dated 1970 and dropped by the table's TTL.

    With ``redaction`` (the SDK's engine) the body and the record's attributes are redacted, as span
    content is; resource and scope attributes are kept as sent.
    """
    rows = RowBuffer()
    events: list[GenAIEvent] = []
    received_ns = time.time_ns() if received_ns is None else received_ns
    for r, resource_logs in enumerate(request.resource_logs):
        resource = attributes(resource_logs.resource.attributes)
        service = resource.get("service.name", "")
        service = service if isinstance(service, str) else str(service)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope = scope_logs.scope
            scope_attributes = attributes(scope.attributes)
            for i, record in enumerate(scope_logs.log_records):
                problem = _bad_record(record, f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]")
                if problem is not None:
                    raise PayloadError(problem)
                attrs = attributes(record.attributes)
                body = any_value(record.body) if record.HasField("body") else ""
                if redaction is not None:
                    attrs = redaction.value(attrs)
                    body = redaction(body) if isinstance(body, str) else redaction.value(body)
                name = record.event_name or attrs.get("event.name", "")
                name = name if isinstance(name, str) else str(name)
                trace_id, span_id = record.trace_id.hex(), record.span_id.hex()
                rows.append(
                    [
                        _datetime64(record.time_unix_nano or record.observed_time_unix_nano or received_ns),
                        trace_id,
                        span_id,
                        record.flags & 0xFF,
                        record.severity_text,
                        record.severity_number if 0 <= record.severity_number <= 255 else 0,
                        service,
                        _body_text(body),
                        resource_logs.schema_url,
                        resource,
                        scope_logs.schema_url,
                        scope.name,
                        scope.version,
                        scope_attributes,
                        attrs,
                        name,
                    ]
                )
                if name.startswith("gen_ai.") and trace_id.strip("0") and span_id.strip("0"):
                    events.append(GenAIEvent(trace_id, span_id, service, scope.name, name, attrs, body))
    return Batch("otel_logs", LOG_COLUMNS, rows.data, "", rows.count), events
