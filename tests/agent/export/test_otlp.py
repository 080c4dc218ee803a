"""OTLP export through the SDK's real OTLP/HTTP exporters, received by a local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llmpulse.agent import observe
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmpulse import agent


class _Receiver(BaseHTTPRequestHandler):
    received: dict[str, list[bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.setdefault(self.path, []).append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _spans(server) -> list:
    spans = []
    for body in server.received.get("/v1/traces", []):
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def _attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = (
            v.string_value
            or v.int_value
            or v.double_value
            or v.bool_value
            or list(x.string_value for x in v.array_value.values)
        )
    return out


def test_otlp_instead_of_clickhouse(receiver, tmp_path) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_port}"
    agent.configure(otlp_endpoint=endpoint, export="otlp", service_name="otlp-svc", spool_dir=str(tmp_path))
    try:

        @observe
        def ask(model: str, messages: list) -> dict:
            return {
                "id": "chatcmpl-7",
                "object": "chat.completion",
                "model": "gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2},
            }

        @observe
        def chain() -> None:
            ask(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])

        chain()
        assert agent.flush(10)
        spans = _spans(receiver)
        assert sorted(s.name for s in spans) == ["chat gpt-4o", "test_otlp_instead_of_clickhouse.<locals>.chain"]
        llm = next(s for s in spans if s.name == "chat gpt-4o")
        root = next(s for s in spans if s.name != "chat gpt-4o")
        assert llm.parent_span_id == root.span_id and llm.trace_id == root.trace_id
        a = _attrs(llm)
        assert a["gen_ai.usage.input_tokens"] == 10 and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert llm.kind == 3  # SPAN_KIND_CLIENT
        request = ExportTraceServiceRequest.FromString(receiver.received["/v1/traces"][0])
        resource = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
        assert resource["service.name"] == "otlp-svc"
        metric_names = set()
        for body in receiver.received.get("/v1/metrics", []):
            for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
                for sm in rm.scope_metrics:
                    metric_names.update(m.name for m in sm.metrics)
        assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= metric_names
        s = agent.stats()
        assert s.otlp_exported == 2 and s.exported == 2 and s.dropped == 0
    finally:
        agent.shutdown()


def test_otlp_as_well_as_clickhouse(receiver, store_dsn, database, tmp_path, ch) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_port}"
    agent.configure(store_dsn, database=database, otlp_endpoint=endpoint, spool_dir=str(tmp_path))
    try:

        @observe(model="gpt-4o-mini")
        def ask(q: str) -> str:
            return "x"

        ask("q")
        assert agent.flush(10)
    finally:
        agent.shutdown()
    assert len(_spans(receiver)) == 1
    assert ch.query(f"SELECT count() FROM {database}.otel_traces").result_rows[0][0] == 1


def test_otlp_endpoint_down_is_counted_not_raised(tmp_path) -> None:
    agent.configure(otlp_endpoint="http://127.0.0.1:1", export="otlp", spool_dir=str(tmp_path))
    try:

        @observe
        def f() -> int:
            return 1

        assert f() == 1
        agent.flush(30)
        s = agent.stats()
        assert s.otlp_failed == 1 and s.dropped_by_reason.get("otlp_export_failed") == 1 and s.exported == 0
    finally:
        agent.shutdown(1)
