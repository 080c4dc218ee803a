"""``POST /v1/logs``: OTLP logs (protobuf and JSON) into the collector's ``otel_logs``, driven by the real
OpenTelemetry log exporter; the same status rules, limits, auth and write-ahead log as ``/v1/traces``."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from .sidecar_harness import running_sidecar

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TOKEN = "s3cret-token"

# The exporter's otel_logs columns (text/template generation, exporter >= v0.151.0), as DESCRIBE shows them.
EXPORTER_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("TraceFlags", "UInt8"),
    ("SeverityText", "LowCardinality(String)"),
    ("SeverityNumber", "UInt8"),
    ("ServiceName", "LowCardinality(String)"),
    ("Body", "String"),
    ("ResourceSchemaUrl", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeSchemaUrl", "LowCardinality(String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "LowCardinality(String)"),
    ("ScopeAttributes", "Map(LowCardinality(String), String)"),
    ("LogAttributes", "Map(LowCardinality(String), String)"),
    ("EventName", "String"),
    *(
        (f"__otel_materialized_{key}", "LowCardinality(String)")
        for key in (
            "k8s.cluster.name",
            "k8s.container.name",
            "k8s.deployment.name",
            "k8s.namespace.name",
            "k8s.node.name",
            "k8s.pod.name",
            "k8s.pod.uid",
            "deployment.environment.name",
        )
    ),
]


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Iterator[Any]:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


def logger_provider(url: str, **exporter: Any) -> LoggerProvider:
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "log-app", "k8s.pod.name": "pod-7"}, schema_url="https://s/1")
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=url + "/v1/logs", **exporter)))
    return provider


def count(ch: Any, database: str, table: str, where: str = "1") -> int:
    return int(ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0])


def test_otel_logs_has_the_exporters_columns(ch: Any, database: str) -> None:
    apply(ch, SchemaOptions(database=database))
    described = ch.query(f"DESCRIBE TABLE {database}.otel_logs").result_rows
    assert [(row[0], row[1]) for row in described] == EXPORTER_COLUMNS
    ddl = ch.command(f"SHOW CREATE TABLE {database}.otel_logs")
    assert "ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)" in ddl
    assert "INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8" in ddl


def test_real_log_exporter_records_land_in_otel_logs(sidecar: Any, ch: Any, database: str) -> None:
    provider = logger_provider(sidecar.url)
    tracer = TracerProvider().get_tracer("app")
    logger = provider.get_logger("my.logger", "2.0.1", schema_url="https://scope/1")
    with tracer.start_as_current_span("work") as span:
        logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="disk almost full",
            attributes={"disk.free_bytes": 1024, "tags": ["a", "b"], "ok": False},
        )
        context = span.get_span_context()
    stamp = time.time_ns() // 1000 * 1000 + 789  # nanoseconds kept
    logger.emit(body={"structured": {"n": 1}}, event_name="app.started", timestamp=stamp)
    provider.shutdown()
    assert sidecar.flush()

    rows = ch.query(
        f"SELECT Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body,"
        f" ResourceSchemaUrl, ResourceAttributes['k8s.pod.name'], ScopeSchemaUrl, ScopeName, ScopeVersion,"
        f" LogAttributes, EventName, `__otel_materialized_k8s.pod.name`"
        f" FROM {database}.otel_logs ORDER BY EventName"
    ).result_rows
    assert len(rows) == 2
    warn, started = rows
    assert warn[1:3] == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert warn[3] & 1 == 1  # sampled (the W3C random flag may be set too)
    assert warn[4:8] == ("WARN", 13, "log-app", "disk almost full")
    assert warn[8:13] == ("https://s/1", "pod-7", "https://scope/1", "my.logger", "2.0.1")
    assert warn[13] == {"disk.free_bytes": "1024", "tags": '["a","b"]', "ok": "false"}
    assert (warn[14], warn[15]) == ("", "pod-7")
    assert started[1:3] == ("", "")
    assert json.loads(started[7]) == {"structured": {"n": 1}}
    assert started[14] == "app.started"
    nanos = ch.query(
        f"SELECT toUnixTimestamp64Nano(Timestamp) FROM {database}.otel_logs WHERE EventName = 'app.started'"
    ).result_rows[0][0]
    assert nanos == stamp
    assert sidecar.metric("llmpulse_received_total", signal="logs") == 2


def test_json_and_gzip_bodies(sidecar: Any, ch: Any, database: str) -> None:
    provider = logger_provider(sidecar.url, compression=Compression.Gzip)
    provider.get_logger("gz").emit(body="compressed")
    provider.shutdown()

    now = time.time_ns()
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-app"}}]},
                "scopeLogs": [
                    {
                        "scope": {"name": "pino"},
                        "logRecords": [
                            {
                                "observedTimeUnixNano": str(now),
                                "severityNumber": 9,
                                "body": {"stringValue": "hello"},
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "flags": 257,
                                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    answer = sidecar.post(
        "/v1/logs", gzip.compress(json.dumps(document).encode()), {**JSON, "Content-Encoding": "gzip"}
    )
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    assert sidecar.flush()
    row = ch.query(
        f"SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, TraceFlags, SeverityNumber, Body, LogAttributes"
        f" FROM {database}.otel_logs WHERE ServiceName = 'node-app'"
    ).result_rows
    assert row == [(now, "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", 1, 9, "hello", {"n": "3"})]
    assert count(ch, database, "otel_logs", "Body = 'compressed'") == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported media type"),
        (b"not json", JSON, 400, "not valid JSON"),
        (b"\xff\xfe garbage", PROTOBUF, 400, "not a valid protobuf ExportLogsServiceRequest"),
        (
            json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "abcd", "body": {}}]}]}]}).encode(),
            JSON,
            400,
            "resourceLogs[0].scopeLogs[0].logRecords[0]: traceId must be 16 bytes or empty, got 2",
        ),
        (
            json.dumps(
                {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": str(2**63 - 1)}]}]}]}
            ).encode(),
            JSON,
            400,
            "timeUnixNano 9223372036854775807 is after 2100-01-01T00:00:00Z",
        ),
        (b"x" * 5000, {**PROTOBUF, "Content-Encoding": "br"}, 415, "unsupported Content-Encoding 'br'"),
    ],
)
def test_bad_requests_get_a_clear_error_and_store_nothing(
    sidecar: Any, ch: Any, database: str, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    answer = sidecar.post("/v1/logs", body, headers)
    assert answer.status == status
    parsed = status_pb2.Status()
    if answer.headers["Content-Type"] == "application/json":
        assert message in json.loads(answer.data)["message"]
    else:
        parsed.ParseFromString(answer.data)
        assert message in parsed.message
    assert sidecar.flush()
    assert count(ch, database, "otel_logs") == 0
    assert sidecar.metric("llmpulse_http_requests_total", path="/v1/logs", code=str(status)) == 1


def test_a_bad_record_refuses_the_whole_request(sidecar: Any, ch: Any, database: str) -> None:
    good = {"body": {"stringValue": "fine"}}
    bad = {"spanId": "00ff", "body": {"stringValue": "broken"}}
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [good, bad]}]}]}
    assert sidecar.post("/v1/logs", json.dumps(document).encode(), JSON).status == 400
    assert sidecar.flush()
    assert count(ch, database, "otel_logs") == 0


def test_size_limit_and_token(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, auth_token=TOKEN, max_body_bytes=4096) as sidecar:
        body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]})
        assert sidecar.post("/v1/logs", body.encode(), JSON).status == 401
        ok = sidecar.post("/v1/logs", body.encode(), {**JSON, "Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200
        big = gzip.compress(b"x" * 10_000)
        too_big = sidecar.post(
            "/v1/logs", big, {**PROTOBUF, "Content-Encoding": "gzip", "Authorization": f"Bearer {TOKEN}"}
        )
        assert too_big.status == 413
        assert sidecar.flush()
    assert count(ch, database, "otel_logs") == 1


def test_logs_are_in_the_write_ahead_log_before_the_answer(sidecar: Any, ch: Any, database: str) -> None:
    log = sidecar.sidecar.wal
    assert log is not None
    before = log.stats.records
    provider = logger_provider(sidecar.url)
    provider.get_logger("w").emit(body="durable")
    provider.shutdown()
    assert log.stats.records > before
    assert sidecar.flush()
    assert count(ch, database, "otel_logs", "Body = 'durable'") == 1


def test_log_bodies_and_attributes_are_redacted(sidecar: Any, ch: Any, database: str) -> None:
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    provider = logger_provider(sidecar.url)
    provider.get_logger("r").emit(
        body={"message": f"calling with {key}", "password": "hunter2"},
        attributes={"user.email": "jane.doe@example.com", "api_key": key, "safe": "kept"},
    )
    provider.shutdown()
    assert sidecar.flush()
    body, attrs = ch.query(f"SELECT Body, LogAttributes FROM {database}.otel_logs").result_rows[0]
    assert key not in body and "hunter2" not in body and "jane.doe@example.com" not in attrs["user.email"]
    assert key not in attrs["api_key"] and attrs["safe"] == "kept"
