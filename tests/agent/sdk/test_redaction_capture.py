"""Issue 10, defects 4 and 12: captured content is redacted everywhere it is stored, and snapshotted at call time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent import observe
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from llmpulse import agent
from tests.agent.sidecar.sidecar_harness import running_sidecar
from tests.agent.sidecar.test_receiver import _Keep

EMAIL = "jane.doe@example.com"
KEY = "sk-proj-abcdefghijklmnopqrstuvwx1234"
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def _stored(span: Any) -> str:
    return json.dumps([span.attributes, span.status_message, span.events], default=str)


def test_tool_call_arguments_parsed_into_a_dict_are_redacted(configured) -> None:
    @observe()
    def ask(model: str, messages: list) -> dict:
        return CHAT

    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "send", "arguments": json.dumps({"to": EMAIL, "key": KEY})},
    }
    ask(model="gpt-4o-mini", messages=[{"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "hi"}])

    @observe(kind="tool")
    def send(args: dict) -> dict:
        return {"sent_to": EMAIL, "password": "hunter2hunter2"}

    send({"to": EMAIL, "api_key": KEY})
    assert agent.flush()
    for span in configured["collector"].spans:
        stored = _stored(span)
        assert EMAIL not in stored and KEY not in stored and "hunter2hunter2" not in stored, stored


def test_exception_message_stack_trace_and_status_are_redacted(configured) -> None:
    @observe(model="gpt-4o")
    def ask() -> None:
        raise RuntimeError(f"user {EMAIL} sent key {KEY}")

    with pytest.raises(RuntimeError):
        ask()
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o")
    assert span.status_code == "Error"
    event = span.events[0][2]
    for text in (span.status_message, event["exception.message"], event["exception.stacktrace"]):
        assert EMAIL not in text and KEY not in text and "[REDACTED" in text
    assert "RuntimeError" in event["exception.stacktrace"]


def test_a_message_changed_after_the_call_is_stored_as_it_was(configured) -> None:
    @observe()
    def ask(model: str, messages: list) -> dict:
        return CHAT

    messages = [{"role": "user", "content": "original question"}]
    ask(model="gpt-4o-mini", messages=messages)
    messages[0]["content"] = "changed after the call"
    assert agent.flush()
    captured = json.loads(configured["collector"].one("chat gpt-4o-mini").attributes["gen_ai.input.messages"])
    assert "original question" in json.dumps(captured) and "changed" not in json.dumps(captured)


def _otlp_spans() -> list[Any]:
    keep = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-app"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    with provider.get_tracer("t").start_as_current_span(
        "chat gpt-4o",
        attributes={
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": f"mail {EMAIL}"}]),
            "http.request.header.authorization": "Bearer abc123def456ghi789",
            "gen_ai.usage.input_tokens": 5,
        },
    ) as span:
        span.record_exception(RuntimeError(f"bad key {KEY}"))
        span.set_status(Status(StatusCode.ERROR, f"failed for {EMAIL}"))
    provider.shutdown()
    return keep.spans


@pytest.mark.parametrize("redact", [True, False])
def test_otlp_content_is_redacted_in_the_stored_row(
    store_dsn: str, database: str, tmp_path: Path, ch: Any, redact: bool
) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, redact_otlp=redact) as sidecar:
        exporter = OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")
        assert exporter.export(_otlp_spans()) == SpanExportResult.SUCCESS
        assert sidecar.flush()
    rows = ch.query(f"SELECT SpanAttributes, StatusMessage, Events.Attributes FROM {database}.otel_traces").result_rows
    assert len(rows) == 1
    stored = json.dumps(rows[0], default=str)
    if redact:
        assert EMAIL not in stored and KEY not in stored and "abc123def456ghi789" not in stored, stored
        assert rows[0][0]["gen_ai.usage.input_tokens"] == "5"
    else:
        assert EMAIL in stored and KEY in stored


def test_nested_parts_and_positional_arguments_are_snapshotted(configured) -> None:
    @observe()
    def ask(model: str, messages: list) -> dict:
        return CHAT

    parts = [{"type": "text", "text": "original part"}]
    messages = [{"role": "user", "content": parts}]
    ask("gpt-4o-mini", messages)  # positional
    parts[0]["text"] = "changed part"
    parts.append({"type": "text", "text": "appended part"})
    messages.append({"role": "user", "content": "appended message"})
    assert agent.flush()
    stored = configured["collector"].one("chat gpt-4o-mini").attributes["gen_ai.input.messages"]
    assert "original part" in stored
    assert "changed" not in stored and "appended" not in stored, stored


def test_snapshot_copies_containers_and_shares_everything_else() -> None:
    from llmpulse.agent.sdk.decorator import _MAX_COPY_DEPTH, _copy

    model = object()
    value = {"a": [{"b": (1, [2])}], "model": model, "text": "x" * 10}
    snap = _copy(value, 0)
    assert snap == value
    assert snap["a"] is not value["a"] and snap["a"][0] is not value["a"][0]
    assert snap["a"][0]["b"][1] is not value["a"][0]["b"][1] and type(snap["a"][0]["b"]) is tuple
    assert snap["model"] is model and snap["text"] is value["text"], "objects and strings are shared"
    deep: list = []
    node = deep
    for _ in range(_MAX_COPY_DEPTH + 10):
        node.append([])
        node = node[0]
    assert _copy(deep, 0) == deep, "past the depth bound the rest is kept by reference, never a RecursionError"


def test_tool_call_arguments_in_the_response_are_redacted(configured) -> None:
    response = json.loads(json.dumps(CHAT))
    response["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "login", "arguments": json.dumps({"user": EMAIL, "password": "hunter2hunter2"})},
            }
        ],
    }
    response["choices"][0]["finish_reason"] = "tool_calls"

    @observe()
    def ask(model: str, messages: list) -> dict:
        return response

    ask(model="gpt-4o-mini", messages=[{"role": "user", "content": "log me in"}])
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o-mini")
    output = span.attributes["gen_ai.output.messages"]
    assert "login" in output and EMAIL not in output and "hunter2hunter2" not in output, output
