"""Real instrumentation packages as clients: each instruments a real openai client, exports OTLP/HTTP to a
real ``llmpulse agent``, and ``llm_calls`` is read back from chDB.

The packages are the ``interop`` extra (pinned in pyproject.toml); a test skips, saying which, when its
package is not installed. OpenLIT needs openai < 3 and runs in its own environment (``test_openlit``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.agent.sidecar.sidecar_harness import running_sidecar, wait_for

from .calls import PLAIN_QUESTION, assert_calls, make_calls, read_calls


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Iterator[Any]:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


def _tracer_provider(sidecar: Any, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")))
    return provider


def _instrumented_calls(instrumentor: Any, **providers: Any) -> None:
    instrumentor.instrument(**providers)
    try:
        make_calls()
    finally:
        instrumentor.uninstrument()


def test_openinference_openai(sidecar: Any, ch: Any, database: str) -> None:
    module = pytest.importorskip(
        "openinference.instrumentation.openai", reason="openinference-instrumentation-openai (the interop extra)"
    )
    provider = _tracer_provider(sidecar, "openinference-app")
    _instrumented_calls(module.OpenAIInstrumentor(), tracer_provider=provider)
    provider.shutdown()
    assert sidecar.flush()
    rows = read_calls(ch, database, "openinference-app")
    assert_calls(rows)
    plain = rows[0]
    assert '"role":"system"' in plain["InputMessages"] and PLAIN_QUESTION in plain["InputMessages"]
    assert plain["FinishReasons"] == ["stop"]
    kept = ch.query(
        f"SELECT SpanAttributes['llm.model_name'], SpanAttributes['openinference.span.kind']"
        f" FROM {database}.otel_traces WHERE ServiceName = 'openinference-app' ORDER BY Timestamp LIMIT 1"
    ).result_rows[0]
    assert kept == ("o4-mini-2025-04-16", "LLM"), "otel_traces keeps the attributes the client sent"


def test_traceloop_openai(sidecar: Any, ch: Any, database: str) -> None:
    module = pytest.importorskip(
        "opentelemetry.instrumentation.openai", reason="opentelemetry-instrumentation-openai (the interop extra)"
    )
    provider = _tracer_provider(sidecar, "traceloop-app")
    _instrumented_calls(module.OpenAIInstrumentor(), tracer_provider=provider)
    provider.shutdown()
    assert sidecar.flush()
    rows = read_calls(ch, database, "traceloop-app")
    assert_calls(rows)
    assert rows[0]["FinishReasons"] == ["stop"]


def test_openai_v2_content_from_events_joined_after_the_spans(
    sidecar: Any, ch: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official instrumentation sends content only as events (OTLP logs); here the spans arrive first."""
    module = pytest.importorskip(
        "opentelemetry.instrumentation.openai_v2", reason="opentelemetry-instrumentation-openai-v2 (the interop extra)"
    )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    tracer_provider = _tracer_provider(sidecar, "openai-v2-app")
    logger_provider = LoggerProvider(resource=Resource.create({"service.name": "openai-v2-app"}))
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=sidecar.url + "/v1/logs"))
    )
    _instrumented_calls(module.OpenAIInstrumentor(), tracer_provider=tracer_provider, logger_provider=logger_provider)
    tracer_provider.shutdown()  # the spans first: their llm_calls rows wait for the events
    assert sidecar.flush()
    assert read_calls(ch, database, "openai-v2-app") == []
    assert sidecar.sidecar.join.waiting_spans() == 2
    logger_provider.shutdown()
    assert wait_for(lambda: sidecar.flush() and len(read_calls(ch, database, "openai-v2-app")) == 2)
    rows = read_calls(ch, database, "openai-v2-app")
    # this version records neither the stream flag nor a time to first token, nor cached tokens
    assert_calls(rows, ttft=False, cache_read=False, stream_flag=False)
    logs = ch.query(
        f"SELECT count(), countIf(EventName = 'gen_ai.client.inference.operation.details')"
        f" FROM {database}.otel_logs WHERE ServiceName = 'openai-v2-app'"
    ).result_rows[0]
    assert logs == (2, 2)
    assert sidecar.metric("llmpulse_join_spans_total", outcome="joined") == 2
