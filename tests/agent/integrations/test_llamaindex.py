"""``instrument("llamaindex")`` on real llama-index-core: a RAG query engine over an in-memory index.

One query is one trace: the query span, its retrieve and synthesize spans, and the LLM call under the
synthesizer, read back from chDB (``otel_traces`` for the tree, ``llm_calls`` for the LLM call with the
retrieved node texts as its RAG context). Sync, async, streaming, a failing LLM, an LLM whose client call
reports usage, parallel queries, and the handlers' own bounds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from llmpulse.agent import instrument, observe, stats, uninstrument

from llmpulse import agent

pytest.importorskip("llama_index.core", reason="the llamaindex extra (llama-index-core) is not installed")

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import ChatMessage
from llmpulse.agent.integrations import llamaindex as integration

from tests.agent.integrations.llamaindex_fakes import (
    ANSWER,
    RAISED,
    TEXTS,
    BackendDown,
    FailingLLM,
    NoNetwork,
    OpenAIBackedLLM,
    build_index,
    mock_llm,
)
from tests.agent.provider_fakes import OPENAI_CHAT_TEXT, OPENAI_STREAM_TEXT, openai_client

QUESTION = "What is the capital of France?"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[NoNetwork]:
    """No network: NLTK data and the tiktoken file come from llama-index-core's bundled caches."""
    monkeypatch.delenv("NLTK_DATA", raising=False)
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    guard = NoNetwork(socket.socket.connect)
    monkeypatch.setattr(socket.socket, "connect", guard)
    yield guard
    assert guard.refused == []


@pytest.fixture
def index(offline: NoNetwork) -> Any:
    return build_index()


@pytest.fixture
def traced(configured: dict[str, Any], index: Any) -> Iterator[dict[str, Any]]:
    instrument("llamaindex")
    try:
        yield {**configured, "index": index}
    finally:
        uninstrument()
    assert integration.tracker() is None


def _spans(env: dict[str, Any]) -> list[Any]:
    assert agent.flush()
    tracker_open = integration.tracker().open_spans() if integration.tracker() else 0
    assert tracker_open == 0, "every dispatcher span was forgotten once it ended"
    return env["collector"].spans


def _trace_rows(ch: Any, env: dict[str, Any]) -> list[dict[str, Any]]:
    result = ch.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, StatusCode, SpanAttributes "
        "FROM {db:Identifier}.otel_traces ORDER BY Timestamp",
        parameters={"db": env["database"]},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _llm_rows(ch: Any, env: dict[str, Any]) -> list[dict[str, Any]]:
    result = ch.query(
        "SELECT TraceId, SpanId, ParentSpanId, Provider, Operation, RequestModel, ResponseModel, InputTokens, "
        "OutputTokens, CacheReadInputTokens, CostUSD, Stream, TimeToFirstTokenSeconds, StatusCode, ErrorType, "
        "PromptText, ResponseText, Context FROM {db:Identifier}.llm_calls ORDER BY Timestamp",
        parameters={"db": env["database"]},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _tree(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Span name -> its parent's span name ('' for the root), checking one trace and no dangling parent."""
    assert len({r["TraceId"] for r in rows}) == 1, "one trace"
    names = {r["SpanId"]: r["SpanName"] for r in rows}
    tree = {}
    for row in rows:
        parent = row["ParentSpanId"]
        assert parent == "" or parent in names, f"{row['SpanName']} has a parent outside the trace"
        tree[row["SpanName"]] = names.get(parent, "")
    return tree


RAG_TREE = {
    "query RetrieverQueryEngine": "",
    "retrieve VectorIndexRetriever": "query RetrieverQueryEngine",
    "synthesize CompactAndRefine": "query RetrieverQueryEngine",
    "text_completion": "synthesize CompactAndRefine",
}


def _rag_tree(llm_span: str) -> dict[str, str]:
    """The RAG tree with the LLM span named after its model."""
    return {**{k: v for k, v in RAG_TREE.items() if k != "text_completion"}, llm_span: RAG_TREE["text_completion"]}


def _assert_rag_call(llm: dict[str, Any], response: Any, *, stream: bool = False) -> None:
    retrieved = [n.node.get_content() for n in response.source_nodes]
    assert len(retrieved) == 2 and set(retrieved) <= set(TEXTS)
    assert llm["Context"] == "\n\n".join(retrieved), "the retrieved node texts are the LLM call's RAG context"
    assert QUESTION in llm["PromptText"] and all(text in llm["PromptText"] for text in retrieved)
    assert llm["ResponseText"] == ANSWER
    assert llm["Operation"] == "text_completion" and llm["Provider"] == "llamaindex" and llm["RequestModel"] == ""
    assert llm["InputTokens"] is None and llm["OutputTokens"] is None and llm["CostUSD"] is None, "MockLLM: no usage"
    assert llm["Stream"] is stream and llm["StatusCode"] == "Unset"
    assert (llm["TimeToFirstTokenSeconds"] is not None) is stream


def test_a_query_is_one_trace_with_the_retrieved_nodes_as_rag_context(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2)
    response = engine.query(QUESTION)
    assert str(response) == ANSWER
    spans = _spans(traced)
    assert len(spans) == 4 and sum(s.is_llm for s in spans) == 1
    rows = _trace_rows(ch, traced)
    assert _tree(rows) == RAG_TREE
    attributes = {r["SpanName"]: r["SpanAttributes"] for r in rows}
    query = attributes["query RetrieverQueryEngine"]
    assert json.loads(query["llmpulse.input"]) == {"query": QUESTION}
    assert query["llmpulse.output"] == ANSWER and query["llmpulse.span.type"] == "chain"
    retrieved = json.loads(attributes["retrieve VectorIndexRetriever"]["llmpulse.output"])
    assert [item["text"] for item in retrieved] == [n.node.get_content() for n in response.source_nodes]
    assert attributes["text_completion"]["llamaindex.component"] == "MockLLM"
    [llm] = _llm_rows(ch, traced)
    _assert_rag_call(llm, response)
    assert llm["TraceId"] == rows[0]["TraceId"]


def test_an_async_query_is_one_trace(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2)
    response = asyncio.run(engine.aquery(QUESTION))
    assert str(response) == ANSWER
    _spans(traced)
    assert _tree(_trace_rows(ch, traced)) == RAG_TREE
    [llm] = _llm_rows(ch, traced)
    _assert_rag_call(llm, response)


def test_a_streaming_query_ends_its_spans_with_the_full_output(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2, streaming=True)
    response = engine.query(QUESTION)
    assert agent.flush()
    assert [s.name for s in traced["collector"].spans] == ["retrieve VectorIndexRetriever"], (
        "the query and synthesize spans wait for the stream"
    )
    tokens = list(response.response_gen)
    assert "".join(tokens).strip() == ANSWER
    spans = _spans(traced)
    assert len(spans) == 4, "one LLM span: the stream read after the query returned still joins its trace"
    rows = _trace_rows(ch, traced)
    assert _tree(rows) == RAG_TREE
    query = next(r["SpanAttributes"] for r in rows if r["SpanName"] == "query RetrieverQueryEngine")
    assert query["llmpulse.output"] == "".join(tokens) and query["llmpulse.stream.state"] == "completed"
    [llm] = _llm_rows(ch, traced)
    llm["ResponseText"] = llm["ResponseText"].strip()
    _assert_rag_call(llm, response, stream=True)


def test_an_async_streaming_query_is_one_trace_with_one_llm_span(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2, streaming=True)

    async def run() -> tuple[Any, list[str]]:
        response = await engine.aquery(QUESTION)
        return response, [token async for token in response.async_response_gen()]

    response, tokens = asyncio.run(run())
    assert "".join(tokens).strip() == ANSWER
    spans = _spans(traced)
    assert len(spans) == 4, "CustomLLM.astream_complete reads stream_complete: still one LLM call"
    assert _tree(_trace_rows(ch, traced)) == RAG_TREE
    [llm] = _llm_rows(ch, traced)
    llm["ResponseText"] = llm["ResponseText"].strip()
    _assert_rag_call(llm, response, stream=True)


def test_a_stream_closed_early_ends_every_span_as_abandoned(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2, streaming=True)
    response = engine.query(QUESTION)
    first = next(response.response_gen)
    response.response_gen.close()
    _spans(traced)
    rows = {r["SpanName"]: r for r in _trace_rows(ch, traced)}
    assert set(rows) == set(RAG_TREE)
    for name in ("query RetrieverQueryEngine", "synthesize CompactAndRefine", "text_completion"):
        assert rows[name]["SpanAttributes"]["llmpulse.stream.state"] == "abandoned", name
        assert rows[name]["StatusCode"] == "Unset", "closing a stream is not an error"
    assert rows["query RetrieverQueryEngine"]["SpanAttributes"]["llmpulse.output"] == first
    [llm] = _llm_rows(ch, traced)
    assert llm["ResponseText"] == first


def test_a_stream_never_read_still_ends_its_spans(traced, ch) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2, streaming=True)
    engine.query(QUESTION)  # the response is dropped unread (llama-index-core 0.13+ never calls the LLM then)
    gc.collect()
    _spans(traced)
    rows = {r["SpanName"]: r for r in _trace_rows(ch, traced)}
    assert set(rows) - {"text_completion"} == set(RAG_TREE) - {"text_completion"}
    for row in rows.values():
        assert row["SpanAttributes"].get("llmpulse.stream.state") in (None, "abandoned")
    assert rows["query RetrieverQueryEngine"]["SpanAttributes"]["llmpulse.stream.state"] == "abandoned"


def test_a_retriever_alone_is_one_retrieve_span(traced, ch) -> None:
    nodes = traced["index"].as_retriever(similarity_top_k=3).retrieve("Berlin")
    assert len(nodes) == 3
    [span] = _spans(traced)
    assert span.name == "retrieve VectorIndexRetriever" and span.parent_id == 0 and not span.is_llm
    [row] = _trace_rows(ch, traced)
    assert {item["text"] for item in json.loads(row["SpanAttributes"]["llmpulse.output"])} == set(TEXTS)
    assert _llm_rows(ch, traced) == []


def test_a_chat_call_records_its_messages(traced, ch) -> None:
    llm = mock_llm()
    reply = llm.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")])
    assert reply.message.content == ANSWER
    spans = _spans(traced)
    assert len(spans) == 1, "CustomLLM.chat calls complete: one LLM call, one span"
    [row] = _llm_rows(ch, traced)
    assert row["Operation"] == "chat" and row["PromptText"] == "Hi" and row["ResponseText"] == ANSWER
    messages = json.loads(spans[0].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in messages] == ["system", "user"]


def test_a_failing_llm_is_recorded_and_its_exception_passes_through(traced, ch) -> None:
    RAISED.clear()
    engine = traced["index"].as_query_engine(llm=FailingLLM(), similarity_top_k=2)
    with pytest.raises(BackendDown) as caught:
        engine.query(QUESTION)
    assert caught.value is RAISED[0], "the app gets the very exception the LLM raised"
    _spans(traced)
    rows = _trace_rows(ch, traced)
    assert _tree(rows) == RAG_TREE
    status = {r["SpanName"]: r["StatusCode"] for r in rows}
    assert status == {**dict.fromkeys(RAG_TREE, "Error"), "retrieve VectorIndexRetriever": "Unset"}
    [llm] = _llm_rows(ch, traced)
    assert llm["StatusCode"] == "Error" and llm["ErrorType"] == "BackendDown" and llm["Context"]


def test_an_llm_reporting_usage_gets_tokens_and_cost(traced, ch) -> None:
    llm = OpenAIBackedLLM(client=openai_client("openai_chat_completion.json"), model="o4-mini")
    response = traced["index"].as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    assert str(response) == OPENAI_CHAT_TEXT
    _spans(traced)
    [row] = _llm_rows(ch, traced)
    assert row["Provider"] == "openai" and row["RequestModel"] == "o4-mini"
    assert row["ResponseModel"] == "o4-mini-2025-04-16"
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadInputTokens"]) == (1843, 212, 1536)
    assert row["CostUSD"] > 0 and row["ResponseText"] == OPENAI_CHAT_TEXT and row["Context"]


def test_an_instrumented_openai_call_inside_the_llm_is_folded_into_its_span(traced, ch) -> None:
    pytest.importorskip("openai", reason="the openai client is not installed")
    instrument("openai")
    llm = OpenAIBackedLLM(client=openai_client("openai_chat_completion.json"), model="o4-mini")
    traced["index"].as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    spans = _spans(traced)
    assert len(spans) == 4 and sum(s.is_llm for s in spans) == 1, "one LLM call, one LLM span"
    [row] = _llm_rows(ch, traced)
    assert row["InputTokens"] == 1843 and row["CostUSD"] > 0 and row["Context"]


def test_a_streamed_openai_call_is_folded_into_the_llm_stream_span(traced, ch) -> None:
    pytest.importorskip("openai", reason="the openai client is not installed")
    instrument("openai")
    llm = OpenAIBackedLLM(client=openai_client("openai_chat_stream.sse"), model="gpt-4o-mini")
    engine = traced["index"].as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    assert "".join(engine.query(QUESTION).response_gen) == OPENAI_STREAM_TEXT
    spans = _spans(traced)
    assert len(spans) == 4 and sum(s.is_llm for s in spans) == 1, "the client's stream is the LLM span's stream"
    assert _tree(_trace_rows(ch, traced)) == _rag_tree("text_completion gpt-4o-mini")
    [row] = _llm_rows(ch, traced)
    assert (row["InputTokens"], row["OutputTokens"]) == (19, 19) and row["CostUSD"] > 0
    assert row["Stream"] and row["ResponseText"] == OPENAI_STREAM_TEXT and row["Context"]


def test_inside_an_observed_function_the_query_nests(traced) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2)

    @observe(kind="chain")
    def answer(question: str) -> str:
        return str(engine.query(question))

    assert answer(QUESTION) == ANSWER
    spans = {s.name: s for s in _spans(traced)}
    outer = spans[answer.__qualname__]
    assert spans["query RetrieverQueryEngine"].parent_id == outer.span_id
    assert len({s.trace_id for s in spans.values()}) == 1


def _one_trace_per_question(spans: list[Any], questions: list[str]) -> None:
    roots = [s for s in spans if s.parent_id == 0]
    assert sorted(json.loads(r.attributes["llmpulse.input"])["query"] for r in roots) == sorted(questions)
    for root in roots:
        trace = [s for s in spans if s.trace_id == root.trace_id]
        by_id = {s.span_id: s for s in trace}
        assert len(trace) == 4 and all(s is root or s.parent_id in by_id for s in trace)
        question = json.loads(root.attributes["llmpulse.input"])["query"]
        [llm] = [s for s in trace if s.is_llm]
        assert question in llm.attributes["gen_ai.input.messages"], "each LLM call sits in its own query's trace"


def test_parallel_async_queries_keep_their_own_trees(traced) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2)
    questions = [f"Question {i}: which capital?" for i in range(4)]

    async def run() -> list[Any]:
        return await asyncio.gather(*(engine.aquery(q) for q in questions))

    assert [str(r) for r in asyncio.run(run())] == [ANSWER] * 4
    _one_trace_per_question(_spans(traced), questions)


def test_queries_in_threads_keep_their_own_trees(traced) -> None:
    engine = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2)
    questions = [f"Question {i}: which capital?" for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert [str(r) for r in pool.map(engine.query, questions)] == [ANSWER] * 4
    _one_trace_per_question(_spans(traced), questions)


def test_instrument_is_idempotent_and_uninstrument_removes_both_handlers(configured, index) -> None:
    dispatcher = get_dispatcher()
    before = (list(dispatcher.span_handlers), list(dispatcher.event_handlers))
    instrument("llamaindex")
    instrument("llamaindex")
    added = [h for h in dispatcher.span_handlers if isinstance(h, integration.SpanHandler)]
    assert len(added) == 1 and sum(isinstance(h, integration.EventHandler) for h in dispatcher.event_handlers) == 1
    uninstrument("llamaindex")
    assert (dispatcher.span_handlers, dispatcher.event_handlers) == before
    index.as_query_engine(llm=mock_llm()).query(QUESTION)
    assert agent.flush() and configured["collector"].spans == []


def test_past_the_cap_spans_go_unrecorded_and_counted(traced) -> None:
    integration.tracker().max_open = 1  # the query span fills it: every span below it is untracked
    response = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2).query(QUESTION)
    assert str(response) == ANSWER, "the app is unaffected"
    spans = _spans(traced)
    assert [s.name for s in spans] == ["query RetrieverQueryEngine"]
    assert stats().dropped_by_reason.get(integration.DROP_REASON, 0) > 0


def test_a_failure_inside_the_handler_never_reaches_the_app(traced, monkeypatch, caplog) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("bug in the request shape")

    monkeypatch.setattr(integration.shapes, "llm_request", broken)
    response = traced["index"].as_query_engine(llm=mock_llm(), similarity_top_k=2).query(QUESTION)
    assert str(response) == ANSWER
    names = sorted(s.name for s in _spans(traced))
    assert names == sorted(set(RAG_TREE) - {"text_completion"}), "the LLM span is lost, the rest recorded"
    assert "could not start a LlamaIndex span" in caplog.text


def test_before_configure_the_handlers_record_and_keep_nothing(index) -> None:
    instrument("llamaindex")
    try:
        assert str(index.as_query_engine(llm=mock_llm()).query(QUESTION)) == ANSWER
        assert integration.tracker().open_spans() == 0
    finally:
        uninstrument()


def test_inside_an_observed_llm_function_the_call_is_folded_into_it(traced) -> None:
    llm = OpenAIBackedLLM(client=openai_client("openai_chat_completion.json"), model="o4-mini")

    @observe(kind="llm", prompt_template="capital")
    def ask(question: str) -> str:  # returns the text only: model and usage come from the folded call
        return llm.complete(question).text

    assert ask(QUESTION) == OPENAI_CHAT_TEXT
    [span] = _spans(traced)
    a = span.attributes
    assert span.is_llm and a["gen_ai.request.model"] == "o4-mini" and a["gen_ai.usage.input_tokens"] == 1843
    assert a["llmpulse.prompt.template"] == "capital"
