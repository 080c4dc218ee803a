"""GenAI events (OTLP logs) and retrieval documents joined to their LLM spans' llm_calls rows, in either order.

The join itself with a test clock, then through a real sidecar with the real OpenTelemetry exporters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.sidecar.join import ATTRS, GenAIJoin
from llmpulse.agent.sidecar.otlp_decode import SpanRow
from llmpulse.agent.sidecar.otlp_logs import GenAIEvent
from llmpulse.agent.store.schema import SchemaOptions, apply
from llmpulse.agent.store.schema.traces import JOIN_DEFERRED, TRACE_COLUMNS
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from .sidecar_harness import running_sidecar, wait_for

KNOWN_SCOPE = "opentelemetry.instrumentation.some_genai"  # OpenTelemetry's own GenAI instrumentations send events
TRACE, SPAN = "a" * 32, "b" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def span_row(attrs: dict[str, Any], *, scope: str = KNOWN_SCOPE, trace: str = TRACE, span: str = SPAN, start: int = 10):
    row: list[Any] = [None] * len(TRACE_COLUMNS)
    row[TRACE_COLUMNS.index("TraceId")], row[TRACE_COLUMNS.index("SpanId")] = trace, span
    row[TRACE_COLUMNS.index("ServiceName")], row[TRACE_COLUMNS.index("ScopeName")] = "svc", scope
    row[ATTRS] = attrs
    return SpanRow(row, start, start + 5)


def chat(**extra: Any) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", **extra}


def event(name: str, body: Any = None, *, scope: str = KNOWN_SCOPE, span: str = SPAN, **attrs: Any) -> GenAIEvent:
    return GenAIEvent(TRACE, span, "svc", scope, name, attrs, body)


USER = event("gen_ai.user.message", {"content": "Hello?"})
CHOICE = event("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "Hi!"}})


def content(attrs: dict[str, Any]) -> tuple[Any, Any]:
    return json.loads(attrs["gen_ai.input.messages"]), json.loads(attrs["gen_ai.output.messages"])


# --- the join ------------------------------------------------------------------------------------------------


def test_events_first_the_span_takes_their_content() -> None:
    join = GenAIJoin(5.0, clock=Clock())
    released, _ = join.events([USER, CHOICE])
    assert released == [] and join.pending_events() == 2
    span = span_row(chat())
    join.spans([span])
    inputs, outputs = content(span.attrs)
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "Hello?"}]}]
    assert outputs == [{"role": "assistant", "parts": [{"type": "text", "content": "Hi!"}], "finish_reason": "stop"}]
    assert JOIN_DEFERRED not in span.attrs, "its content came with it: it is written at once"
    assert (join.pending_events(), join.stats.events_joined) == (0, 2)


def test_span_first_waits_for_its_response_event() -> None:
    join = GenAIJoin(5.0, clock=Clock())
    span = span_row(chat())
    join.spans([span])
    assert span.attrs[JOIN_DEFERRED] == "true", "stored marked: llm_calls' view skips it"
    assert join.waiting_spans() == 1
    released, _ = join.events([USER])
    assert released == [], "no response yet: it keeps waiting"
    released, _ = join.events([CHOICE])
    assert len(released) == 1 and join.waiting_spans() == 0
    attrs = released[0][ATTRS]
    assert JOIN_DEFERRED not in attrs
    assert content(attrs)[0][0]["parts"][0]["content"] == "Hello?"
    assert (join.stats.spans_deferred, join.stats.spans_joined, join.stats.events_joined) == (1, 1, 2)


def test_a_wait_ends_without_events_and_late_events_are_counted() -> None:
    clock = Clock()
    join = GenAIJoin(5.0, event_ttl=60.0, clock=clock)
    join.spans([span_row(chat())])
    clock.now += 4.9
    assert join.expired() == []
    clock.now += 0.2
    released = join.expired()
    assert len(released) == 1 and "gen_ai.input.messages" not in released[0][ATTRS]
    assert join.stats.spans_without_events == 1
    join.events([USER, CHOICE])  # too late: they wait for a span that was written already
    clock.now += 61
    join.expired()
    assert (join.pending_events(), join.stats.events_unmatched) == (0, 2)


def test_only_sources_that_send_events_make_spans_wait() -> None:
    join = GenAIJoin(5.0, clock=Clock())
    first = span_row(chat(), scope="my.lib")
    join.spans([first])
    assert JOIN_DEFERRED not in first.attrs, "nothing says my.lib sends events: written at once"
    join.events([event("gen_ai.user.message", {"content": "x"}, scope="my.lib", span="c" * 16)])
    later = span_row(chat(), scope="my.lib", span="d" * 16)
    join.spans([later])
    assert later.attrs[JOIN_DEFERRED] == "true", "my.lib has sent events: its spans wait for theirs"
    with_content = span_row(chat(**{"gen_ai.input.messages": "[]", "gen_ai.output.messages": "[1]"}), span="e" * 16)
    join.spans([with_content])
    assert JOIN_DEFERRED not in with_content.attrs
    assert GenAIJoin(0, clock=Clock()).spans([span := span_row(chat())]) and JOIN_DEFERRED not in span.attrs


def test_a_refused_request_is_undone() -> None:
    join = GenAIJoin(5.0, clock=Clock())
    join.spans([span_row(chat())])
    released, undo = join.events([USER, CHOICE])
    assert len(released) == 1
    undo()  # answered 503: the client sends the logs again
    assert join.waiting_spans() == 1 and join.stats.spans_joined == 0
    released, _ = join.events([USER, CHOICE])
    assert len(content(released[0][ATTRS])[0]) == 1, "the retry's events are not counted twice"

    join = GenAIJoin(5.0, clock=Clock())
    join.events([USER])
    undo = join.spans([span_row(chat())])
    undo()
    assert (join.waiting_spans(), join.pending_events()) == (0, 1), "the span's retry finds its events again"


def test_waiting_spans_are_bounded() -> None:
    join = GenAIJoin(5.0, max_waiting=2, clock=Clock())
    spans = [span_row(chat(), span=f"{i:016x}") for i in range(3)]
    join.spans(spans)
    assert [JOIN_DEFERRED in s.attrs for s in spans] == [True, True, False]
    assert join.stats.spans_not_deferred == 1


def test_retrieved_documents_become_the_context_of_later_llm_calls_of_the_trace() -> None:
    join = GenAIJoin(5.0, clock=Clock())
    retriever = span_row(
        {
            "gen_ai.operation.name": "retrieval",
            "retrieval.documents.0.document.content": "Paris is the capital of France.",
            "retrieval.documents.1.document.content": "It is on the Seine.",
        },
        span="1" * 16,
        start=0,
    )
    join.spans([retriever])
    llm = span_row(chat(), scope="my.lib", span="2" * 16, start=10)
    other_trace = span_row(chat(), scope="my.lib", trace="f" * 32, span="3" * 16, start=10)
    join.spans([llm, other_trace])
    assert llm.attrs["llmpulse.rag.context"] == "Paris is the capital of France.\n\nIt is on the Seine."
    assert "llmpulse.rag.context" not in other_trace.attrs
    assert join.stats.contexts_attached == 1


# --- through the sidecar ---------------------------------------------------------------------------------------


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Iterator[Any]:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _providers(service: str) -> tuple[TracerProvider, _Keep, LoggerProvider, list[Any]]:
    """A tracer whose spans are kept (exported when the test says) and a logger whose records are kept too."""
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    resource = Resource.create({"service.name": service})
    spans = _Keep()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return tracer_provider, spans, logger_provider, [logs]


def _send(sidecar: Any, spans: list[Any] | None = None, logs: list[Any] | None = None) -> None:
    if spans:
        assert OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces").export(spans).name == "SUCCESS"
    if logs:
        assert OTLPLogExporter(endpoint=sidecar.url + "/v1/logs").export(logs).name == "SUCCESS"


def _legacy_call(tracer_provider: TracerProvider, logger_provider: LoggerProvider, scope: str) -> None:
    """One chat call as an instrumentation of semconv 1.28-1.36 records it: a span without content and one
    event per message, the body holding the content (here with an e-mail address that must be redacted)."""
    tracer = tracer_provider.get_tracer(scope)
    logger = logger_provider.get_logger(scope)
    with tracer.start_as_current_span(
        "chat gpt-4o-mini",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 30,
            "gen_ai.usage.output_tokens": 12,
        },
    ):
        logger.emit(event_name="gen_ai.system.message", body={"content": "You help with orders."})
        logger.emit(event_name="gen_ai.user.message", body={"content": "Where is order 42? I am jane@example.com"})
        logger.emit(
            event_name="gen_ai.assistant.message",
            body={"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "status", "arguments": "{}"}}]},
        )
        logger.emit(event_name="gen_ai.tool.message", body={"id": "c1", "content": "shipped"})
        logger.emit(event_name="gen_ai.user.message", body={"content": "And when does it arrive?"})
        logger.emit(
            event_name="gen_ai.choice",
            body={"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Tomorrow."}},
        )


CALL_QUERY = (
    "SELECT PromptText, ResponseText, InputMessages, FinishReasons, InputTokens, CostUSD > 0"
    " FROM {db}.llm_calls WHERE ServiceName = {{service:String}}"
)


def _call(ch: Any, database: str, service: str) -> list[Any]:
    return ch.query(CALL_QUERY.format(db=database), parameters={"service": service}).result_rows


def _check_legacy_call(rows: list[Any]) -> None:
    assert len(rows) == 1
    prompt, response, inputs, finish, tokens, priced = rows[0]
    assert finish == ["stop"]
    assert (prompt, response, tokens, priced) == ("And when does it arrive?", "Tomorrow.", 30, True)
    messages = json.loads(inputs)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[2]["parts"][0]["name"] == "status"
    assert messages[3]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": "shipped"}]
    assert "jane@example.com" not in inputs, "event bodies are redacted like span content"


@pytest.mark.parametrize("logs_first", [True, False], ids=["logs-first", "spans-first"])
def test_per_message_events_give_the_call_its_content(sidecar: Any, ch: Any, database: str, logs_first: bool) -> None:
    service = "events-logs-first" if logs_first else "events-spans-first"
    tracer_provider, spans, logger_provider, (logs,) = _providers(service)
    _legacy_call(tracer_provider, logger_provider, KNOWN_SCOPE)
    records = logs.get_finished_logs()
    assert len(records) == 6
    if logs_first:
        _send(sidecar, logs=records)
        _send(sidecar, spans=spans.spans)
    else:
        _send(sidecar, spans=spans.spans)
        assert sidecar.flush() and _call(ch, database, service) == [], "its llm_calls row waits for the events"
        _send(sidecar, logs=records)
    assert wait_for(lambda: sidecar.flush() and len(_call(ch, database, service)) == 1)
    _check_legacy_call(_call(ch, database, service))
    stored = ch.query(
        f"SELECT SpanAttributes['{JOIN_DEFERRED}'] FROM {database}.otel_traces WHERE ServiceName = '{service}'"
    ).result_rows
    assert stored == [("" if logs_first else "true",)]


def test_a_span_without_events_is_written_when_its_wait_ends(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, events_wait=0.2) as sidecar:
        tracer_provider, spans, _, _ = _providers("no-events")
        with tracer_provider.get_tracer(KNOWN_SCOPE).start_as_current_span(
            "chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
        ):
            pass
        _send(sidecar, spans=spans.spans)
        assert wait_for(lambda: sidecar.flush() and len(_call(ch, database, "no-events")) == 1)
        assert sidecar.metric("llmpulse_join_spans_total", outcome="without_events") == 1


def test_stopping_writes_the_spans_still_waiting(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, events_wait=3600.0) as sidecar:
        tracer_provider, spans, _, _ = _providers("stopping")
        with tracer_provider.get_tracer(KNOWN_SCOPE).start_as_current_span(
            "chat", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
        ):
            pass
        _send(sidecar, spans=spans.spans)
        assert sidecar.flush() and _call(ch, database, "stopping") == []
        assert sidecar.stop()
    assert len(_call(ch, database, "stopping")) == 1


def test_spans_left_waiting_by_a_crash_are_written_at_the_next_start(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    """The crash: a span stored marked, its events stored, and no llm_calls row (the memory was lost)."""
    from llmpulse.agent.sidecar.otlp_decode import trace_rows
    from llmpulse.agent.sidecar.otlp_logs import log_rows
    from llmpulse.agent.store.insert import insert_batch
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    apply(ch, SchemaOptions(database=database))
    tracer_provider, spans, logger_provider, (logs,) = _providers("crashed")
    _legacy_call(tracer_provider, logger_provider, KNOWN_SCOPE)
    join = GenAIJoin(60.0)
    stored = trace_rows(encode_spans(spans.spans), on_genai=join.spans)
    assert join.waiting_spans() == 1
    stored.token = "crash-spans"
    events, _ = log_rows(encode_logs(logs.get_finished_logs()))
    events.token = "crash-logs"
    insert_batch(ch, database, stored)
    insert_batch(ch, database, events)
    assert _call(ch, database, "crashed") == []

    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        assert wait_for(lambda: sidecar.flush() and len(_call(ch, database, "crashed")) == 1)
        rows = _call(ch, database, "crashed")
        assert rows[0][:2] == ("And when does it arrive?", "Tomorrow.")
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:  # a second start finds nothing to do
        assert sidecar.flush()
    assert len(_call(ch, database, "crashed")) == 1


def test_openinference_retriever_documents_are_the_llm_calls_context(sidecar: Any, ch: Any, database: str) -> None:
    tracer_provider, spans, _, _ = _providers("rag-app")
    tracer = tracer_provider.get_tracer("openinference.instrumentation.llama_index")
    with tracer.start_as_current_span("query", attributes={"openinference.span.kind": "CHAIN", "input.value": "q"}):
        with tracer.start_as_current_span(
            "retrieve",
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "input.value": "capital of France",
                "retrieval.documents.0.document.content": "Paris is the capital of France.",
                "retrieval.documents.0.document.id": "doc-1",
                "retrieval.documents.1.document.content": "France is a country in Europe.",
            },
        ):
            pass
        retriever_done = len(spans.spans)
        with tracer.start_as_current_span(
            "llm",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "What is the capital of France?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Paris.",
                "llm.token_count.prompt": 40,
                "llm.token_count.completion": 2,
            },
        ):
            pass
    _send(sidecar, spans=spans.spans[:retriever_done])  # the retriever's request first, as its batch ends first
    _send(sidecar, spans=spans.spans[retriever_done:])
    assert sidecar.flush()
    rows = ch.query(
        f"SELECT Context, PromptText, ResponseText, InputTokens FROM {database}.llm_calls WHERE ServiceName = 'rag-app'"
    ).result_rows
    assert rows == [
        (
            "Paris is the capital of France.\n\nFrance is a country in Europe.",
            "What is the capital of France?",
            "Paris.",
            40,
        )
    ]


def test_a_failing_join_costs_no_span_and_no_log(sidecar: Any, ch: Any, database: str, monkeypatch: Any) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug in the join")

    monkeypatch.setattr(sidecar.sidecar.join, "_llm_span", broken)
    monkeypatch.setattr(sidecar.sidecar.join, "_add_pending", broken)
    tracer_provider, spans, logger_provider, (logs,) = _providers("join-bug")
    _legacy_call(tracer_provider, logger_provider, KNOWN_SCOPE)
    _send(sidecar, logs=logs.get_finished_logs(), spans=spans.spans)
    assert sidecar.flush()
    assert ch.query(f"SELECT count() FROM {database}.otel_logs").result_rows == [(6,)]
    assert _call(ch, database, "join-bug")[0][4] == 30, "the span is stored as it came, its llm_calls row too"
    assert sidecar.sidecar.join.waiting_spans() == 0 and sidecar.sidecar.join.pending_events() == 0
