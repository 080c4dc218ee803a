"""LangChain runs as llmpulse spans, on real langchain-core (its fake chat model, an in-memory retriever).

A RAG chain (retriever-filled context | prompt | model | parser) is one trace of nested spans; its LLM span
has the model, tokens and cost of the model's usage and the retrieved documents as its RAG context; the
same holds run async, streamed, in parallel ``batch``, with a tool and with errors. Rows are read back
from chDB.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from llmpulse.agent import instrument, instrumented, observe, uninstrument

from llmpulse import agent

pytest.importorskip("langchain_core", reason="the LangChain integration needs langchain-core (llmpulse[langchain])")

from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from llmpulse.agent.integrations import langchain as lc
from llmpulse.agent.integrations.langchain import LlmpulseCallbackHandler
from llmpulse.agent.integrations.langchain_runs import RunTable

from tests.agent.integrations.langchain_fakes import (
    COST,
    DOCUMENTS,
    MODEL,
    FailingChat,
    FakeChat,
    answer,
    rag_chain,
    vector_retriever,
)

QUESTION = "What is the capital of France?"


def _model(*texts: str, **extra: Any) -> FakeChat:
    return FakeChat(messages=iter([answer(text, **extra) for text in texts]))


def _spans(ch: Any, database: str) -> list[dict[str, Any]]:
    rows = ch.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, StatusCode, SpanAttributes FROM {db:Identifier}.otel_traces",
        parameters={"db": database},
    ).named_results()
    return list(rows)


def _llm_rows(ch: Any, database: str) -> list[dict[str, Any]]:
    return list(
        ch.query(
            "SELECT TraceId, SpanId, ParentSpanId, Provider, RequestModel, ResponseModel, Temperature, InputTokens, "
            "OutputTokens, CacheReadInputTokens, ReasoningOutputTokens, CostUSD, Stream, TimeToFirstTokenSeconds, "
            "FinishReasons, ResponseText, InputMessages, Context, StatusCode, ErrorType "
            "FROM {db:Identifier}.llm_calls ORDER BY Timestamp",
            parameters={"db": database},
        ).named_results()
    )


def _by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["SpanId"]: s for s in spans}


def _path(spans: list[dict[str, Any]], span: dict[str, Any]) -> list[str]:
    """Span names from the root down to ``span``."""
    index = _by_id(spans)
    names = [span["SpanName"]]
    while span["ParentSpanId"]:
        span = index[span["ParentSpanId"]]
        names.append(span["SpanName"])
    return names[::-1]


def _assert_llm_row(row: dict[str, Any], *, context: str, text: str) -> None:
    assert row["Provider"] == "openai" and row["RequestModel"] == MODEL
    assert row["ResponseModel"] == f"{MODEL}-2024-07-18" and row["Temperature"] == 0.2
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadInputTokens"]) == (1200, 50, 1000)
    assert row["ReasoningOutputTokens"] == 20
    assert row["CostUSD"] == pytest.approx(COST)
    assert row["FinishReasons"] == ["stop"] and row["ResponseText"] == text
    assert row["Context"] == context, "the retrieved documents are the LLM call's RAG context"
    assert "Answer from this context only" in row["InputMessages"] and '"system"' in row["InputMessages"]


@pytest.fixture
def handler(configured: dict[str, Any]) -> LlmpulseCallbackHandler:
    return LlmpulseCallbackHandler()


@pytest.fixture
def globally(configured: dict[str, Any]) -> Iterator[dict[str, Any]]:
    instrument("langchain")
    try:
        yield configured
    finally:
        uninstrument()


def test_a_rag_chain_is_one_trace_and_its_documents_ground_the_llm_call(handler, configured, ch) -> None:
    retriever = vector_retriever(k=2)
    expected = "\n\n".join(d.page_content for d in retriever.invoke(QUESTION))
    chain = rag_chain(_model("Paris."), retriever)
    assert chain.invoke(QUESTION, config={"callbacks": [handler]}) == "Paris."
    assert agent.flush()
    spans = _spans(ch, configured["database"])
    assert len({s["TraceId"] for s in spans}) == 1, "one trace"
    [root] = [s for s in spans if not s["ParentSpanId"]]
    assert root["SpanName"] == "RunnableSequence"
    names = {s["SpanName"]: s for s in spans}
    assert _path(spans, names["VectorStoreRetriever"]) == [
        "RunnableSequence",
        "RunnableParallel<context,question>",
        "RunnableSequence",
        "VectorStoreRetriever",
    ]
    retrieval = names["VectorStoreRetriever"]["SpanAttributes"]
    assert retrieval["llmpulse.operation"] == "retrieve" and retrieval["llmpulse.retrieval.document_count"] == "2"
    assert QUESTION in retrieval["llmpulse.input"]
    assert all(text in retrieval["llmpulse.output"] for text in expected.split("\n\n"))
    assert _path(spans, names[f"chat {MODEL}"]) == ["RunnableSequence", f"chat {MODEL}"]
    assert names["ChatPromptTemplate"]["SpanAttributes"]["llmpulse.langchain.run_type"] == "prompt"
    [row] = _llm_rows(ch, configured["database"])
    _assert_llm_row(row, context=expected, text="Paris.")
    assert not row["Stream"] and row["TimeToFirstTokenSeconds"] is None
    assert lc.stats()["runs_in_flight"] == 0


def test_instrument_records_every_run_without_callbacks_and_nests_under_observe(globally, ch) -> None:
    chain = rag_chain(_model("Paris."))

    @observe(kind="chain")
    def support(question: str) -> str:
        return chain.invoke(question)

    assert instrumented() == ["langchain"]
    assert support(QUESTION) == "Paris."
    assert agent.flush()
    spans = _spans(ch, globally["database"])
    [root] = [s for s in spans if not s["ParentSpanId"]]
    assert root["SpanName"].endswith("support") and len({s["TraceId"] for s in spans}) == 1
    [row] = _llm_rows(ch, globally["database"])
    assert _path(spans, _by_id(spans)[row["SpanId"]]) == [root["SpanName"], "RunnableSequence", f"chat {MODEL}"]
    _assert_llm_row(row, context=DOCUMENTS["France"], text="Paris.")


def test_an_explicit_handler_beside_the_global_one_records_each_run_once(globally, ch) -> None:
    chain = rag_chain(_model("Paris."))
    chain.invoke(QUESTION, config={"callbacks": [LlmpulseCallbackHandler()]})
    assert agent.flush()
    spans = _spans(ch, globally["database"])
    assert len(spans) == len({s["SpanId"] for s in spans}) == 9
    assert len(_llm_rows(ch, globally["database"])) == 1


def test_uninstrument_stops_recording_but_an_explicit_handler_still_works(configured, ch) -> None:
    instrument("langchain")
    instrument("langchain")  # idempotent
    assert uninstrument("langchain") == []
    rag_chain(_model("Paris.")).invoke(QUESTION)
    assert agent.flush() and _spans(ch, configured["database"]) == []
    rag_chain(_model("Paris.")).invoke(QUESTION, config={"callbacks": [LlmpulseCallbackHandler()]})
    assert agent.flush() and len(_llm_rows(ch, configured["database"])) == 1


@pytest.mark.asyncio
async def test_async_runs_in_parallel_are_one_trace_each(globally, ch) -> None:
    countries = list(DOCUMENTS)
    chains = [rag_chain(_model(f"It is the capital of {c}.")) for c in countries]
    answers = await asyncio.gather(
        *(chain.ainvoke(f"Capital of {c}?") for chain, c in zip(chains, countries, strict=True))
    )
    assert answers == [f"It is the capital of {c}." for c in countries]
    assert agent.flush()
    spans = _spans(ch, globally["database"])
    rows = _llm_rows(ch, globally["database"])
    assert len(rows) == len(countries) and len({s["TraceId"] for s in spans}) == len(countries)
    index = _by_id(spans)
    for row in rows:
        country = row["ResponseText"].rsplit(" ", 1)[-1].rstrip(".")
        assert row["Context"] == DOCUMENTS[country], "each LLM call is grounded on its own retrieval"
        trace = [s for s in spans if s["TraceId"] == row["TraceId"]]
        assert len(trace) == 9 and all(not s["ParentSpanId"] or s["ParentSpanId"] in index for s in trace)
        assert all(index[s["ParentSpanId"]]["TraceId"] == s["TraceId"] for s in trace if s["ParentSpanId"])


def test_parallel_batch_gives_each_input_its_own_trace(handler, configured, ch) -> None:
    countries = list(DOCUMENTS)
    model = _model(*(f"It is the capital of {c}." for c in countries))
    questions = [f"Capital of {c}?" for c in countries]
    chain = rag_chain(model)
    answers = chain.batch(questions, config={"callbacks": [handler], "max_concurrency": 4})
    assert len(answers) == 4
    assert agent.flush()
    spans = _spans(ch, configured["database"])
    rows = _llm_rows(ch, configured["database"])
    roots = [s for s in spans if not s["ParentSpanId"]]
    assert len(roots) == 4 and len({s["TraceId"] for s in spans}) == 4
    index = _by_id(spans)
    for row in rows:  # the fake model answers in call order: the question behind each row is in its messages
        [country] = [c for c in countries if f"Capital of {c}?" in row["InputMessages"]]
        assert row["Context"] == DOCUMENTS[country]
    for span in spans:
        if span["ParentSpanId"]:
            assert index[span["ParentSpanId"]]["TraceId"] == span["TraceId"], "no parent from another trace"


def test_a_stream_ends_its_spans_with_the_whole_output_and_time_to_first_token(handler, configured, ch) -> None:
    chain = rag_chain(_model("The capital of France is Paris."))
    chunks = list(chain.stream(QUESTION, config={"callbacks": [handler]}))
    assert "".join(chunks) == "The capital of France is Paris." and len(chunks) > 3
    assert agent.flush()
    [row] = _llm_rows(ch, configured["database"])
    _assert_llm_row(row, context=DOCUMENTS["France"], text="The capital of France is Paris.")
    assert row["Stream"] and row["TimeToFirstTokenSeconds"] is not None and row["TimeToFirstTokenSeconds"] >= 0
    spans = {s["SpanName"]: s for s in _spans(ch, configured["database"]) if not s["ParentSpanId"]}
    root = spans["RunnableSequence"]["SpanAttributes"]
    assert "The capital of France is Paris." in root["llmpulse.output"]
    assert QUESTION in root["llmpulse.input"], "a streamed chain's input arrives with its end"
    assert lc.stats()["runs_in_flight"] == 0


@pytest.mark.asyncio
async def test_an_async_stream_stopped_early_still_ends_every_span(globally, ch) -> None:
    chain = rag_chain(_model("The capital of France is Paris."))
    stream = chain.astream(QUESTION)
    received = []
    async for chunk in stream:
        received.append(chunk)
        if len(received) == 2:
            break
    await stream.aclose()
    for _ in range(100):  # the runs inside end in tasks of their own, as the loop runs them
        if lc.stats()["runs_in_flight"] == 0:
            break
        await asyncio.sleep(0)
    assert agent.flush()
    spans = _spans(ch, globally["database"])
    assert len(spans) == 9 and lc.stats()["runs_in_flight"] == 0
    [row] = _llm_rows(ch, globally["database"])
    assert row["StatusCode"] != "Error" and row["Context"] == DOCUMENTS["France"]
    llm = next(s for s in spans if s["SpanId"] == row["SpanId"])
    assert llm["SpanAttributes"]["llmpulse.stream.state"] == "abandoned"
    assert row["ResponseText"].startswith("The"), "what was streamed before the stop is kept"


@tool
def capital_of(country: str) -> str:
    """The capital city of a country."""
    return lookup(country)


@observe(kind="chain")
def lookup(country: str) -> str:
    return DOCUMENTS[country].split()[0]


def test_a_tool_call_is_a_tool_span_and_spans_inside_it_nest_under_it(handler, configured, ch) -> None:
    call = {"name": "capital_of", "args": {"country": "France"}, "id": "call_1", "type": "tool_call"}
    model = _model("", tool_calls=[call])
    pipeline = model | RunnableLambda(lambda message: capital_of.invoke(message.tool_calls[0]), name="run_tools")
    result = pipeline.invoke(QUESTION, config={"callbacks": [handler]})
    assert result.content == "Paris"
    assert agent.flush()
    spans = _spans(ch, configured["database"])
    tool_span = next(s for s in spans if s["SpanName"] == "execute_tool capital_of")
    attributes = tool_span["SpanAttributes"]
    assert attributes["gen_ai.tool.name"] == "capital_of" and attributes["llmpulse.span.type"] == "tool"
    assert "France" in attributes["llmpulse.input"] and attributes["llmpulse.output"] == "Paris"
    assert _path(spans, tool_span) == ["RunnableSequence", "run_tools", "execute_tool capital_of"]
    inner = next(s for s in spans if s["SpanName"].endswith("lookup"))
    assert inner["ParentSpanId"] == tool_span["SpanId"], "an @observe function inside the tool nests under it"
    [row] = _llm_rows(ch, configured["database"])
    assert row["FinishReasons"] == ["tool_calls"]
    llm = next(s for s in spans if s["SpanId"] == row["SpanId"])
    assert '"tool_call"' in llm["SpanAttributes"]["gen_ai.output.messages"]
    assert "capital_of" in llm["SpanAttributes"]["gen_ai.output.messages"]


def test_errors_are_recorded_and_pass_through_unchanged(handler, configured, ch) -> None:
    failure = ValueError("no answer")

    def check(text: str) -> str:
        raise failure

    chain = rag_chain(_model("Paris.")) | RunnableLambda(check)
    with pytest.raises(ValueError) as raised:
        chain.invoke(QUESTION, config={"callbacks": [handler]})
    assert raised.value is failure
    with pytest.raises(RuntimeError, match="overloaded"):
        rag_chain(FailingChat(messages=iter([]))).invoke(QUESTION, config={"callbacks": [handler]})
    assert agent.flush()
    spans = _spans(ch, configured["database"])
    failed = {s["SpanName"] for s in spans if s["StatusCode"] == "Error"}
    assert {"check", "RunnableSequence", "chat gpt-4o-mini"} <= failed
    rows = _llm_rows(ch, configured["database"])
    [error_row] = [r for r in rows if r["StatusCode"] == "Error"]
    assert error_row["ErrorType"] == "RuntimeError" and error_row["Context"] == DOCUMENTS["France"]
    roots = [s for s in spans if not s["ParentSpanId"]]
    assert len(roots) == 2 and all(s["StatusCode"] == "Error" for s in roots)
    assert lc.stats()["runs_in_flight"] == 0


def test_runs_that_never_end_are_bounded_ended_as_abandoned_and_counted(handler, configured, monkeypatch) -> None:
    monkeypatch.setattr(lc, "_runs", RunTable(limit=2))

    def start_three() -> None:
        for _ in range(3):
            handler.on_chain_start({"name": "never_ends"}, {"q": 1}, run_id=uuid.uuid4())

    contextvars.copy_context().run(start_three)  # the runs' spans stay current there, not in this test's context
    stats = lc.stats()
    assert stats["runs_in_flight"] == 2 and stats["runs_evicted"] == 1
    assert agent.flush()
    [span] = configured["collector"].spans
    assert span.name == "never_ends" and span.attributes["llmpulse.stream.state"] == "abandoned"


def test_a_callback_that_fails_never_reaches_the_app(handler, configured) -> None:
    before = lc.stats()["callback_errors"]
    handler.on_chat_model_start(None, [[]], run_id=uuid.uuid4(), invocation_params=42)  # a broken integration
    assert lc.stats()["callback_errors"] == before + 1


def test_before_configure_the_handler_records_nothing(ch) -> None:
    assert not agent.is_configured()
    assert rag_chain(_model("Paris.")).invoke(QUESTION, config={"callbacks": [LlmpulseCallbackHandler()]}) == "Paris."
    assert lc.stats()["runs_in_flight"] == 0


def test_a_text_completion_llm_without_usage_records_null_tokens_and_the_run_metadata(handler, configured, ch) -> None:
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.prompts import PromptTemplate

    chain = PromptTemplate.from_template("Capital of {country}?") | FakeListLLM(responses=["Paris"])
    config = {"callbacks": [handler], "metadata": {"user_id": "u-1", "session_id": "s-1", "thread_id": "t-1"}}
    assert chain.invoke({"country": "France"}, config=config) == "Paris"
    assert agent.flush()
    [row] = ch.query(
        "SELECT Operation, PromptText, ResponseText, InputTokens, OutputTokens, CostUSD, UserId, SessionId, "
        "ConversationId FROM {db:Identifier}.llm_calls",
        parameters={"db": configured["database"]},
    ).result_rows
    assert row[:3] == ("text_completion", "Capital of France?", "Paris")
    assert row[3:6] == (None, None, None), "no usage reported: unknown, not zero"
    assert row[6:] == ("u-1", "s-1", "t-1")


def test_documents_retrieved_in_an_observe_function_ground_the_model_called_after(globally, ch) -> None:
    from tests.agent.integrations.langchain_fakes import ByCountry

    model = _model("Paris.", "Paris, still.")

    @observe(kind="chain")
    def rag(question: str) -> str:
        before = model.invoke(question).content  # before any retrieval: no context
        documents = ByCountry().invoke(question)
        context = "\n".join(d.page_content for d in documents)
        return (
            before
            + model.invoke([("system", f"Answer from this context only:\n{context}"), ("human", question)]).content
        )

    assert rag(QUESTION) == "Paris.Paris, still."
    assert agent.flush()
    rows = _llm_rows(ch, globally["database"])
    assert [r["Context"] for r in rows] == ["", DOCUMENTS["France"]], "only the call after the retrieval is grounded"
    spans = _spans(ch, globally["database"])
    assert len({s["TraceId"] for s in spans}) == 1 and len([s for s in spans if not s["ParentSpanId"]]) == 1
