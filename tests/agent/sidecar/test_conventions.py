"""Other GenAI conventions given the semconv attributes llm_calls reads (``conventions.to_semconv``), and one
span of each through a real sidecar into llm_calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.sidecar.conventions import retrieval_documents, to_semconv
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from .sidecar_harness import running_sidecar

START = 1_700_000_000_000_000_000


def mapped(attrs: dict[str, Any], events: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    out = dict(attrs)
    to_semconv(out, START, events or [])
    return out


def messages(text: str) -> list[dict[str, Any]]:
    return json.loads(text)


# --- OpenInference -------------------------------------------------------------------------------------------

OPENINFERENCE_LLM = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.provider": "azure",
    "llm.model_name": "gpt-4o-2024-08-06",
    "llm.invocation_parameters": json.dumps(
        {"model": "gpt-4o", "temperature": 0.2, "max_completion_tokens": 64, "top_p": 0.9, "seed": 7, "stop": ["END"]}
    ),
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "You are terse.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.contents.0.message_content.type": "text",
    "llm.input_messages.1.message.contents.0.message_content.text": "What is on this picture?",
    "llm.input_messages.1.message.contents.1.message_content.type": "image",
    "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://example.com/cat.png",
    "llm.input_messages.2.message.role": "assistant",
    "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "lookup",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": '{"q": "cat"}',
    "llm.input_messages.3.message.role": "tool",
    "llm.input_messages.3.message.tool_call_id": "call_1",
    "llm.input_messages.3.message.content": "a tabby cat",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "A tabby cat.",
    "llm.finish_reason": "stop",
    "llm.token_count.prompt": 120,
    "llm.token_count.completion": 4,
    "llm.token_count.total": 124,
    "llm.token_count.prompt_details.cache_read": 100,
    "llm.token_count.prompt_details.cache_write": 3,
    "llm.token_count.completion_details.reasoning": 2,
    "llm.prompt_template.template": "Describe {image}",
    "llm.prompt_template.version": "v3",
    "session.id": "s-1",
    "user.id": "u-1",
}


def test_openinference_llm_span() -> None:
    attrs = mapped(OPENINFERENCE_LLM)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 64
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (120, 4)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 100
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["llmpulse.prompt.template"] == "Describe {image}"
    assert attrs["llmpulse.prompt.version"] == "v3"
    inputs = messages(attrs["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "tool"]
    assert inputs[0]["parts"] == [{"type": "text", "content": "You are terse."}]
    assert inputs[1]["parts"][0] == {"type": "text", "content": "What is on this picture?"}
    assert inputs[1]["parts"][1]["type"] == "uri" and inputs[1]["parts"][1]["uri"] == "https://example.com/cat.png"
    assert inputs[2]["parts"] == [{"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"q": "cat"}}]
    assert inputs[3]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": "a tabby cat"}]
    assert messages(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "A tabby cat."}], "finish_reason": "stop"}
    ]
    for key, value in OPENINFERENCE_LLM.items():
        assert attrs[key] == value, "the attributes the client sent are kept"


def test_openinference_raw_input_and_output_when_no_messages() -> None:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there"}], "stream": True}
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    }
    attrs = mapped(
        {
            "openinference.span.kind": "LLM",
            "input.value": json.dumps(request),
            "input.mime_type": "application/json",
            "output.value": json.dumps(response),
            "output.mime_type": "application/json",
            "llm.invocation_parameters": json.dumps({"stream": True}),
        }
    )
    assert messages(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Hi there"
    assert messages(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hello!"
    assert attrs["gen_ai.request.stream"] is True
    text = mapped({"openinference.span.kind": "LLM", "input.value": "plain question", "output.value": "plain answer"})
    assert (text["llmpulse.input.text"], text["llmpulse.output.text"]) == ("plain question", "plain answer")


def test_openinference_other_span_kinds() -> None:
    embedding = mapped(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 8,
        }
    )
    assert embedding["gen_ai.operation.name"] == "embeddings"
    assert embedding["gen_ai.request.model"] == "text-embedding-3-small"
    assert embedding["gen_ai.usage.input_tokens"] == 8
    chain = mapped({"openinference.span.kind": "CHAIN", "input.value": "q", "output.value": "a"})
    assert chain["llmpulse.span.type"] == "chain" and "gen_ai.operation.name" not in chain
    assert (chain["llmpulse.input"], chain["llmpulse.output"]) == ("q", "a")
    tool = mapped({"openinference.span.kind": "TOOL", "tool.name": "search"})
    assert (tool["gen_ai.operation.name"], tool["gen_ai.tool.name"], tool["llmpulse.span.type"]) == (
        "execute_tool",
        "search",
        "tool",
    )
    retriever = {
        "openinference.span.kind": "RETRIEVER",
        "retrieval.documents.0.document.content": "Paris is the capital of France.",
        "retrieval.documents.0.document.score": 0.9,
        "retrieval.documents.1.document.content": "France is in Europe.",
    }
    assert mapped(retriever)["gen_ai.operation.name"] == "retrieval"
    assert retrieval_documents(retriever) == ["Paris is the capital of France.", "France is in Europe."]
    semconv = {"gen_ai.retrieval.documents": json.dumps([{"id": "1", "content": "doc one"}, "doc two"])}
    assert retrieval_documents(semconv) == ["doc one", "doc two"]


def test_openinference_time_to_first_token_from_its_stream_event() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"stream": true}'}
    out = mapped(attrs, [(START + 250_000_000, "First Token Stream Event")])
    assert out["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25)
    assert "gen_ai.response.time_to_first_chunk" not in mapped(
        {"openinference.span.kind": "LLM"}, [(START + 250_000_000, "First Token Stream Event")]
    ), "only a stream has a time to first token"


# --- OpenLLMetry -----------------------------------------------------------------------------------------------

OPENLLMETRY_LEGACY = {
    "llm.request.type": "chat",
    "gen_ai.system": "OpenAI",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "llm.is_streaming": True,
    "llm.usage.total_tokens": 30,
    "gen_ai.usage.prompt_tokens": 20,
    "gen_ai.usage.completion_tokens": 10,
    "gen_ai.usage.cache_read_input_tokens": 5,
    "llm.frequency_penalty": 0.5,
    "llm.user": "u-7",
    "traceloop.association.properties.session_id": "conv-9",
    "traceloop.prompt.key": "support-answer",
    "traceloop.prompt.version": 4,
    "gen_ai.prompt.0.role": "system",
    "gen_ai.prompt.0.content": "Be kind.",
    "gen_ai.prompt.1.role": "user",
    "gen_ai.prompt.1.content": '[{"type": "text", "text": "Where is my order?"}]',
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "",
    "gen_ai.completion.0.finish_reason": "tool_calls",
    "gen_ai.completion.0.tool_calls.0.id": "call_9",
    "gen_ai.completion.0.tool_calls.0.name": "order_status",
    "gen_ai.completion.0.tool_calls.0.arguments": '{"id": 42}',
}


def test_openllmetry_legacy_span() -> None:
    attrs = mapped(OPENLLMETRY_LEGACY, [(START + 40_000_000, "llm.content.completion.chunk")])
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (20, 10)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 5
    assert attrs["gen_ai.request.frequency_penalty"] == 0.5
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.04)
    assert (attrs["user.id"], attrs["session.id"]) == ("u-7", "conv-9")
    assert (attrs["llmpulse.prompt.template"], attrs["llmpulse.prompt.version"]) == ("support-answer", 4)
    inputs = messages(attrs["gen_ai.input.messages"])
    assert inputs[1] == {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}
    output = messages(attrs["gen_ai.output.messages"])[0]
    assert output["finish_reason"] == "tool_call"
    assert output["parts"] == [{"type": "tool_call", "id": "call_9", "name": "order_status", "arguments": {"id": 42}}]
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_calls"]
    completion = mapped({"llm.request.type": "completion", "gen_ai.prompt.0.content": "[1, 2] is a list"})
    assert completion["gen_ai.operation.name"] == "text_completion"
    assert messages(completion["gen_ai.input.messages"])[0]["parts"][0]["content"] == "[1, 2] is a list"


def test_traceloop_workflow_and_task_spans_are_chains() -> None:
    attrs = mapped(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.name": "answer",
            "traceloop.entity.input": '{"question": "q"}',
            "traceloop.entity.output": '"a"',
        }
    )
    assert attrs["llmpulse.span.type"] == "chain"
    assert (attrs["llmpulse.input"], attrs["llmpulse.output"]) == ('{"question": "q"}', '"a"')
    assert "gen_ai.operation.name" not in attrs, "not an LLM call"


# --- OpenLIT, and what is never touched -------------------------------------------------------------------------


def test_openlit_time_to_first_token_for_streams_only() -> None:
    stream = mapped(
        {"gen_ai.operation.name": "chat", "gen_ai.request.stream": True, "gen_ai.server.time_to_first_token": 0.12}
    )
    assert stream["gen_ai.response.time_to_first_chunk"] == 0.12
    plain = mapped(
        {"gen_ai.operation.name": "chat", "gen_ai.request.stream": False, "gen_ai.server.time_to_first_token": 0.9}
    )
    assert "gen_ai.response.time_to_first_chunk" not in plain, "on a plain call it is the whole call's duration"


def test_spans_of_no_other_convention_and_attributes_already_there_are_kept() -> None:
    semconv = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3, "gen_ai.request.model": "m"}
    assert mapped(semconv) == semconv
    both = mapped({"llm.request.type": "chat", "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.input_tokens": 11})
    assert both["gen_ai.usage.input_tokens"] == 11, "a semconv attribute the span has wins"


# --- through the sidecar ---------------------------------------------------------------------------------------


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Iterator[Any]:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


def test_legacy_openllmetry_span_lands_in_llm_calls_priced(sidecar: Any, ch: Any, database: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "legacy-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sidecar.url + "/v1/traces")))
    with provider.get_tracer("opentelemetry.instrumentation.openai.v1", "0.30.0").start_as_current_span(
        "openai.chat", attributes=OPENLLMETRY_LEGACY
    ):
        pass
    provider.shutdown()
    assert sidecar.flush()
    row = ch.query(
        f"SELECT Provider, Operation, RequestModel, InputTokens, OutputTokens, CacheReadInputTokens, CostUSD, Stream,"
        f" UserId, SessionId, PromptTemplate, PromptText, FinishReasons FROM {database}.llm_calls"
    ).result_rows
    cost = PriceTable.vendored().span_cost(("gpt-4o-mini-2024-07-18", "gpt-4o-mini"), 20, 10, 5)
    assert row == [
        (
            "openai",
            "chat",
            "gpt-4o-mini",
            20,
            10,
            5,
            cost,
            True,
            "u-7",
            "conv-9",
            "support-answer",
            "Where is my order?",
            ["tool_calls"],
        )
    ]
