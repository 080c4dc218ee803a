"""The sidecar's OTLP/HTTP receiver, driven by the real OpenTelemetry OTLP/HTTP exporters."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from .sidecar_harness import running_sidecar

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def make_spans(count: int, *, service: str = "java-app", model: str = "gpt-4o-mini") -> list[Any]:
    """Finished SDK spans: GenAI client calls with tokens, one error, nested under a chain span."""
    keep = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "node-1"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("test.instrumentation", "1.2.3")
    with tracer.start_as_current_span("rag pipeline"):
        for i in range(count - 1):
            with tracer.start_as_current_span(
                f"chat {model}",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.usage.input_tokens": 1000 + i,
                    "gen_ai.usage.output_tokens": 100,
                    "gen_ai.response.finish_reasons": ["stop"],
                },
            ) as span:
                span.add_event("gen_ai.content.completion", {"index": i})
                if i == 0:
                    span.set_status(Status(StatusCode.ERROR, "rate limited"))
                    span.set_attribute("error.type", "RateLimitError")
    provider.shutdown()
    return keep.spans


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Any:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


def count(ch: Any, database: str, table: str, where: str = "1") -> int:
    return int(ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0])


def test_real_span_exporter_protobuf_lands_in_otel_traces_and_llm_calls(sidecar: Any, ch: Any, database: str) -> None:
    spans = make_spans(11)
    exporter = OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert sidecar.flush()

    assert count(ch, database, "otel_traces") == 11
    chat = ch.query(
        f"SELECT TraceId, SpanId, ParentSpanId, SpanKind, ServiceName, ScopeName, ScopeVersion, StatusCode,"
        f" StatusMessage, SpanAttributes['gen_ai.usage.input_tokens'], ResourceAttributes['host.name'], Events.Name"
        f" FROM {database}.otel_traces WHERE SpanName = 'chat gpt-4o-mini' ORDER BY Timestamp LIMIT 1"
    ).result_rows[0]
    first = next(s for s in spans if s.name == "chat gpt-4o-mini")
    assert chat[0] == format(first.context.trace_id, "032x")
    assert chat[1] == format(first.context.span_id, "016x")
    assert chat[2] == format(first.parent.span_id, "016x")
    assert chat[3:9] == ("Client", "java-app", "test.instrumentation", "1.2.3", "Error", "rate limited")
    assert chat[9] == "1000"
    assert chat[10] == "node-1"
    assert chat[11] == ["gen_ai.content.completion"]

    calls = ch.query(
        f"SELECT count(), countIf(StatusCode = 'Error'), sum(InputTokens), countIf(CostUSD > 0)"
        f" FROM {database}.llm_calls WHERE ServiceName = 'java-app'"
    ).result_rows[0]
    assert calls == (10, 1, sum(1000 + i for i in range(10)), 10)  # cost priced from the vendored table


def test_gzip_and_json_bodies(sidecar: Any, ch: Any, database: str) -> None:
    exporter = OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces", compression=Compression.Gzip)
    assert exporter.export(make_spans(3)) == SpanExportResult.SUCCESS

    # OTLP/JSON: hex ids (upper case is allowed), enums as integers, 64-bit integers as strings
    now = time.time_ns()
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-app"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "my.library", "version": "1.0.0"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "EEE19B7EC3C1B173",
                                "name": "chat claude-3-5-haiku",
                                "kind": 3,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 1_500_000_000),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                                ],
                                "links": [
                                    {"traceId": "00000000000000000000000000000001", "spanId": "0000000000000002"}
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = json.dumps(document).encode()
    answer = sidecar.post(
        "/v1/traces", gzip.compress(body), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert json.loads(answer.data) == {}
    assert sidecar.flush()

    assert count(ch, database, "otel_traces", "ServiceName = 'java-app'") == 3
    row = ch.query(
        f"SELECT TraceId, SpanId, ParentSpanId, SpanKind, StatusCode, Duration, SpanAttributes, Links.TraceId"
        f" FROM {database}.otel_traces WHERE ServiceName = 'node-app'"
    ).result_rows
    assert len(row) == 1
    trace_id, span_id, parent, kind, status, duration, attributes, links = row[0]
    assert (trace_id, span_id, parent) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173")
    assert (kind, status, duration) == ("Client", "Error", 1_500_000_000)
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": "42",
        "ok": "true",
        "tags": '["a"]',
    }
    assert links == ["00000000000000000000000000000001"]


def test_real_metric_exporter_fills_the_collector_metric_tables(sidecar: Any, ch: Any, database: str) -> None:
    exporter = OTLPMetricExporter(endpoint=sidecar.url + "/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "metrics-app"}), metric_readers=[reader])
    meter = provider.get_meter("gen_ai.client", "0.1")
    tokens = meter.create_counter("gen_ai.client.token.usage.total", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    meter.create_observable_gauge("gpu.utilization", callbacks=[lambda _options: [Observation(0.75, {"gpu": "0"})]])
    tokens.add(120, {"gen_ai.token.type": "input"})
    tokens.add(30, {"gen_ai.token.type": "output"})
    for seconds in (0.2, 0.4, 3.0):
        duration.record(seconds, {"gen_ai.request.model": "m"})
    provider.shutdown()  # one collection, exported once
    assert sidecar.flush()

    sums = dict(
        ch.query(
            f"SELECT Attributes['gen_ai.token.type'], Value FROM {database}.otel_metrics_sum"
            f" WHERE MetricName = 'gen_ai.client.token.usage.total' AND ServiceName = 'metrics-app'"
        ).result_rows
    )
    assert sums == {"input": 120.0, "output": 30.0}
    hist = ch.query(
        f"SELECT Count, Sum, arraySum(BucketCounts), length(ExplicitBounds) + 1 = length(BucketCounts), Min, Max"
        f" FROM {database}.otel_metrics_histogram WHERE MetricName = 'gen_ai.client.operation.duration'"
    ).result_rows
    assert hist == [(3, pytest.approx(3.6), 3, True, 0.2, 3.0)]
    gauge = ch.query(f"SELECT Value, Attributes['gpu'] FROM {database}.otel_metrics_gauge").result_rows
    assert gauge == [(0.75, "0")]
    assert sidecar.metric("llmpulse_received_total", signal="metrics") == 4  # 2 sum points, 1 histogram, 1 gauge


def _status(answer: Any) -> status_pb2.Status:
    return status_pb2.Status.FromString(answer.data)


def test_bad_requests_get_clear_4xx_and_nothing_is_written(sidecar: Any, ch: Any, database: str) -> None:
    good = encode_spans(make_spans(4)).SerializeToString()

    answer = sidecar.post("/v1/traces", b"\xff\xff\xff not protobuf", PROTOBUF)
    assert answer.status == 400
    assert "not a valid protobuf ExportTraceServiceRequest" in _status(answer).message

    answer = sidecar.post("/v1/traces", good[: len(good) // 2], PROTOBUF)  # truncated mid-message
    assert answer.status == 400

    answer = sidecar.post("/v1/traces", b'{"resourceSpans": [', {"Content-Type": "application/json"})
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "not valid JSON" in json.loads(answer.data)["message"]

    bad_id = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abcd", "spanId": "00"}]}]}]})
    answer = sidecar.post("/v1/traces", bad_id.encode(), {"Content-Type": "application/json"})
    assert answer.status == 400
    assert "traceId must be 16 bytes" in json.loads(answer.data)["message"]

    answer = sidecar.post("/v1/traces", gzip.compress(good)[:-20], {**PROTOBUF, "Content-Encoding": "gzip"})
    assert answer.status == 400
    assert "truncated" in _status(answer).message or "not valid gzip" in _status(answer).message

    answer = sidecar.post("/v1/traces", good, {"Content-Type": "text/plain"})
    assert answer.status == 415
    assert "application/x-protobuf" in _status(answer).message

    answer = sidecar.post("/v1/traces", good, {**PROTOBUF, "Content-Encoding": "br"})
    assert answer.status == 415

    assert sidecar.get("/v1/traces").status == 405
    assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 0
    assert sidecar.metric("llmpulse_http_requests_total", path="/v1/traces", code="400") == 5


def test_oversized_bodies_get_413_before_and_after_decompression(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, max_body_bytes=64 * 1024) as sidecar:
        big = encode_spans(make_spans(400)).SerializeToString()
        assert len(big) > 64 * 1024
        answer = sidecar.post("/v1/traces", big, PROTOBUF)
        assert answer.status == 413
        assert "over the limit of 65536 bytes" in _status(answer).message

        bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros in about 50 KiB
        assert len(bomb) < 64 * 1024
        answer = sidecar.post("/v1/traces", bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
        assert answer.status == 413
        assert "decompressed body is over the limit" in _status(answer).message

        small = encode_spans(make_spans(5)).SerializeToString()
        assert sidecar.post("/v1/traces", small, PROTOBUF).status == 200
        assert sidecar.flush()
        assert count(ch, database, "otel_traces") == 5


def test_bearer_token_is_required_when_configured(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, auth_token="s3cret-token") as sidecar:
        body = encode_spans(make_spans(2)).SerializeToString()
        answer = sidecar.post("/v1/traces", body, PROTOBUF)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Authorization": "Bearer wrong"}).status == 401

        exporter = OTLPSpanExporter(
            endpoint=sidecar.url + "/v1/traces", headers={"Authorization": "Bearer s3cret-token"}
        )
        assert exporter.export(make_spans(2)) == SpanExportResult.SUCCESS
        assert sidecar.get("/healthz").status == 200  # probes need no token
        assert sidecar.flush()
        assert count(ch, database, "otel_traces") == 2


def test_health_readiness_and_self_metrics(sidecar: Any) -> None:
    assert json.loads(sidecar.get("/healthz").data) == {"status": "ok"}
    assert sidecar.get("/readyz").status == 200
    exporter = OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")
    assert exporter.export(make_spans(6)) == SpanExportResult.SUCCESS
    assert sidecar.flush()
    assert sidecar.metric("llmpulse_received_total", signal="traces") == 6
    assert sidecar.metric("llmpulse_exported_records_total") == 6
    assert sidecar.metric("llmpulse_queue_depth") == 0
    assert sidecar.metric("llmpulse_insert_seconds_count") >= 1

    assert sidecar.stop()
    assert sidecar.sidecar.pipeline.snapshot().exported == 6


def test_rows_the_store_refuses_are_kept_aside_and_do_not_block_the_rest(
    sidecar: Any, ch: Any, database: str, tmp_path: Path
) -> None:
    from llmpulse.agent.sidecar.otlp_decode import trace_rows
    from llmpulse.agent.store.rows import Batch

    good = trace_rows(encode_spans(make_spans(3)))
    bad = Batch("otel_traces", good.columns, b'["not a time", 1]\n', "", 1)
    pipeline = sidecar.sidecar.pipeline
    assert pipeline.submit_rows([bad])
    assert pipeline.flush()
    assert pipeline.submit_rows([good])
    assert pipeline.flush()

    assert count(ch, database, "otel_traces") == 3
    stats = pipeline.snapshot()
    assert stats.dropped_by_reason == {"rejected_by_store": 1}
    assert stats.exported == 3
    dead = list((tmp_path / "spool" / "dead").iterdir())
    assert len(dead) == 1
    assert b"not a time" in dead[0].read_bytes()
    assert sidecar.metric("llmpulse_dropped_records_total", reason="rejected_by_store") == 1


def test_dashboard_page_is_served_from_the_store(sidecar: Any) -> None:
    exporter = OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")
    assert exporter.export(make_spans(8)) == SpanExportResult.SUCCESS
    assert sidecar.flush()
    page = sidecar.get("/dashboard?window=1h")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.data.decode()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "<svg" in html
    bad = sidecar.get("/dashboard?window=forever")
    assert bad.status == 400 and "bad window" in bad.data.decode()


def _json_span(trace_byte: int, **fields: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": f"{trace_byte:02x}" * 16,
        "spanId": "ab" * 8,
        "name": "hostile",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1000),
        **fields,
    }


def _json_traces(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


JSON = {"Content-Type": "application/json"}


def test_every_gzip_member_is_read_and_trailing_garbage_is_refused(sidecar: Any, ch: Any, database: str) -> None:
    """Issue 10 defect 10: only the first member was read (10 of 17 spans stored) and trailing bytes were accepted."""
    first = encode_spans(make_spans(10)).SerializeToString()
    second = encode_spans(make_spans(7)).SerializeToString()
    body = gzip.compress(first) + gzip.compress(second)  # concatenated protobuf messages merge their spans
    assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Content-Encoding": "gzip"}).status == 200

    answer = sidecar.post("/v1/traces", gzip.compress(first) + b"garbage!", {**PROTOBUF, "Content-Encoding": "gzip"})
    assert answer.status == 400
    assert "trailing data" in _status(answer).message
    assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 17


def test_gzip_bomb_split_across_members_is_cut_off(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, max_body_bytes=64 * 1024) as sidecar:
        member = gzip.compress(b"\0" * (40 * 1024))  # each member under the limit, their sum over it
        answer = sidecar.post("/v1/traces", member * 3, {**PROTOBUF, "Content-Encoding": "gzip"})
        assert answer.status == 413


def test_times_past_datetime64_are_refused_with_400_naming_the_field(sidecar: Any, ch: Any, database: str) -> None:
    """Issue 10 defect 1: a span after 2262-04-11 was answered 200 and then refused by ClickHouse."""
    late = str(2**63 + 5)
    for span, field_name in (
        (_json_span(1, startTimeUnixNano=late, endTimeUnixNano=late), "startTimeUnixNano"),
        (_json_span(2, endTimeUnixNano=late), "endTimeUnixNano"),
        (_json_span(3, events=[{"name": "e", "timeUnixNano": late}]), "timeUnixNano"),
    ):
        answer = sidecar.post("/v1/traces", _json_traces(span), JSON)
        assert answer.status == 400, span
        assert field_name in json.loads(answer.data)["message"]
    edge = str(2**63 - 1)  # the last instant DateTime64(9) holds is stored
    assert sidecar.post("/v1/traces", _json_traces(_json_span(4, endTimeUnixNano=edge)), JSON).status == 200
    assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 1


def test_deep_nesting_and_huge_numbers_get_400_not_500_or_415(sidecar: Any, ch: Any, database: str) -> None:
    """Issue 10 defect 9: deep JSON was a 500 (RecursionError), a 400-digit token count a 500, ValueErrors 415."""
    levels = 240  # about 1,000 JSON levels, written as text: json.dumps itself would recurse too deep
    deep = '{"kvlistValue": {"values": [{"key": "k", "value": ' * levels + '{"stringValue": "x"}' + "}]}}" * levels
    text = _json_traces(_json_span(5, attributes=[{"key": "a", "value": "DEEP"}])).decode()
    answer = sidecar.post("/v1/traces", text.replace('"DEEP"', deep).encode(), JSON)
    assert answer.status == 400

    huge = {"intValue": "9" * 400}
    span = _json_span(
        6,
        attributes=[
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": huge},
        ],
    )
    answer = sidecar.post("/v1/traces", _json_traces(span), JSON)
    assert answer.status == 400
    big_count = _json_span(
        7,
        attributes=[
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "9" * 400}},
        ],
    )
    assert sidecar.post("/v1/traces", _json_traces(big_count), JSON).status == 200  # stored, unpriced
    assert sidecar.post("/v1/traces", b"\x1f\x8b", {**PROTOBUF, "Content-Encoding": "gzip"}).status == 400
    with pytest.raises(KeyError):  # no 500 was ever answered
        sidecar.metric("llmpulse_http_requests_total", path="/v1/traces", code="500")
    assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 1


def test_bearer_scheme_is_case_insensitive(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    """Issue 10 defect 6 (RFC 6750): ``bearer`` in lower case was refused with 401."""
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, auth_token="s3cret-token") as sidecar:
        body = encode_spans(make_spans(2)).SerializeToString()
        assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Authorization": "bearer s3cret-token"}).status == 200
        assert sidecar.post("/v1/traces", body, {**PROTOBUF, "Authorization": "Basic s3cret-token"}).status == 401


def test_with_a_token_every_endpoint_but_healthz_needs_it(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    """Issue 10 defect 6: /dashboard, /metrics and /readyz answered without the token."""
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, auth_token="s3cret-token") as sidecar:
        for path in ("/dashboard", "/metrics", "/readyz"):
            assert sidecar.get(path).status == 401, path
            authorized = sidecar.http.request(
                "GET", sidecar.url + path, headers={"Authorization": "bearer s3cret-token"}
            )
            assert authorized.status == 200, path
        assert sidecar.get("/healthz").status == 200


def test_listening_beyond_loopback_without_a_token_warns(
    store_dsn: str, database: str, tmp_path: Path, ch: Any, caplog: Any
) -> None:
    """Issue 10 defect 6: 0.0.0.0 without a token started silently."""
    apply(ch, SchemaOptions(database=database))
    with caplog.at_level("WARNING", logger="llmpulse"):
        with running_sidecar(store_dsn, database, tmp_path, host="0.0.0.0"):
            pass
    assert any("without --auth-token" in record.getMessage() for record in caplog.records)


def test_idle_and_slow_loris_connections_are_closed(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    """Issue 10 defect 2: a connection that never sent a request (or only half its headers) stayed open forever."""
    import socket

    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, idle_timeout="0.5s") as sidecar:
        port = int(sidecar.url.rsplit(":", 1)[1])
        idle = socket.create_connection(("127.0.0.1", port))
        loris = socket.create_connection(("127.0.0.1", port))
        loris.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        for conn in (idle, loris):
            conn.settimeout(30)
            assert conn.recv(1024) == b""  # closed by the agent, not by the 30 s socket timeout (which raises)
            conn.close()
        assert sidecar.get("/healthz").status == 200


def test_dashboard_window_takes_the_one_duration_grammar(sidecar: Any) -> None:
    """Issue 12: ``/dashboard?window=`` reads durations as every command does (``1w``, ``1.5h``)."""
    for window in ("1w", "1.5h"):
        page = sidecar.get(f"/dashboard?window={window}")
        assert page.status == 200, page.data[:300]
