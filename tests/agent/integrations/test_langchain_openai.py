"""LangChain over the instrumented openai client: one LLM call is one LLM span.

``ChatOpenAI`` (langchain-openai) calls the real openai client, answered in process by recorded bodies
(``tests/agent/provider_fakes.py``). With both ``instrument("openai")`` and ``instrument("langchain")``,
the client call made inside a chat model run is folded into the LangChain LLM span; a client call made
anywhere else (in a ``RunnableLambda``, after an async model call) keeps its own span, nested where it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llmpulse.agent import instrument, observe, uninstrument

from llmpulse import agent
from tests.agent.provider_fakes import OPENAI_CHAT_TEXT, OPENAI_STREAM_TEXT, FixtureServer, openai_client

openai = pytest.importorskip("openai")
pytest.importorskip("langchain_core", reason="the LangChain integration needs langchain-core (llmpulse[langchain])")
langchain_openai = pytest.importorskip("langchain_openai", reason="ChatOpenAI over the openai client")

from langchain_core.runnables import RunnableLambda  # noqa: E402
from llmpulse.agent.integrations import langchain as lc  # noqa: E402

from tests.agent.integrations.langchain_fakes import DOCUMENTS, rag_chain  # noqa: E402

QUESTION = "What is the capital of France?"


@pytest.fixture
def both(configured: dict[str, Any]) -> Iterator[dict[str, Any]]:
    instrument("openai", "langchain")
    try:
        yield configured
    finally:
        uninstrument()


def _chat(fixture: str, *, async_: bool = False, **options: Any) -> Any:
    server = FixtureServer(fixture)
    client = (openai.DefaultAsyncHttpxClient if async_ else openai.DefaultHttpxClient)(transport=server.transport())
    key = "http_async_client" if async_ else "http_client"
    return langchain_openai.ChatOpenAI(
        model="gpt-4o-mini",
        api_key="sk-test",
        base_url="http://testserver/v1",
        max_retries=0,
        temperature=0.3,
        **{key: client},
        **options,
    )


def _llm_spans(configured: dict[str, Any]) -> list[Any]:
    return [s for s in configured["collector"].spans if s.is_llm]


def test_a_chat_model_run_and_its_client_call_are_one_llm_span(both, ch) -> None:
    assert rag_chain(_chat("openai_chat_completion.json")).invoke(QUESTION) == OPENAI_CHAT_TEXT
    assert agent.flush()
    [llm] = _llm_spans(both)
    a = llm.attributes
    assert a["llmpulse.langchain.run_type"] == "llm" and a["llmpulse.langchain.name"] == "ChatOpenAI"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.response.model"] == "o4-mini-2025-04-16"
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.temperature"] == 0.3
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1843, 212)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1536 and a["gen_ai.usage.reasoning.output_tokens"] == 192
    assert a["llmpulse.cost.usd"] > 0 and a["gen_ai.response.id"] == "chatcmpl-C3kF9wQzR7tLmP2xVbN8aYdE4sJhU"
    root = next(s for s in both["collector"].spans if s.parent_id == 0)
    assert llm.parent_id == root.span_id and root.name == "RunnableSequence"
    [row] = ch.query(
        "SELECT RequestModel, InputTokens, CostUSD, ResponseText, Context FROM {db:Identifier}.llm_calls",
        parameters={"db": both["database"]},
    ).result_rows
    assert row[0] == "gpt-4o-mini" and row[1] == 1843 and row[2] == a["llmpulse.cost.usd"]
    assert row[3] == OPENAI_CHAT_TEXT and row[4] == DOCUMENTS["France"]


def test_a_streamed_chat_model_is_one_llm_span_with_the_streams_usage(both) -> None:
    chunks = list(_chat("openai_chat_stream.sse", stream_usage=True).stream(QUESTION))
    assert "".join(c.content for c in chunks) == OPENAI_STREAM_TEXT
    assert agent.flush()
    [llm] = _llm_spans(both)
    a = llm.attributes
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_chunk"] >= 0
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (19, 19)
    assert a["llmpulse.output.text"] == OPENAI_STREAM_TEXT and a["llmpulse.stream.state"] == "completed"
    assert lc.stats()["runs_in_flight"] == 0


@pytest.mark.asyncio
async def test_after_an_async_model_call_a_client_call_nests_where_it_runs(both) -> None:
    model = _chat("openai_chat_completion.json", async_=True)
    client = openai_client(FixtureServer("openai_chat_completion.json"), async_=True)

    @observe(kind="chain")
    async def answer_twice(question: str) -> str:
        first = await model.ainvoke(question)  # LangChain ends this run from a task of its own
        messages = [{"role": "user", "content": question}]
        second = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return first.content + second.choices[0].message.content

    assert await answer_twice(QUESTION) == OPENAI_CHAT_TEXT * 2
    assert agent.flush()
    chain = next(s for s in both["collector"].spans if s.name.endswith("answer_twice"))
    llms = _llm_spans(both)
    assert len(llms) == 2, "one span per call: the model's call folded into it, the direct call its own"
    assert all(s.parent_id == chain.span_id and s.trace_id == chain.trace_id for s in llms)
    assert sorted("llmpulse.langchain.run_type" in s.attributes for s in llms) == [False, True]
    assert all(s.attributes["gen_ai.usage.input_tokens"] == 1843 for s in llms)


def test_a_client_call_inside_a_runnable_lambda_nests_under_it(both) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))

    def ask(question: str) -> str:
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        return completion.choices[0].message.content

    chain = RunnableLambda(lambda q: q.strip(), name="clean") | RunnableLambda(ask, name="ask")
    assert chain.invoke(f" {QUESTION} ") == OPENAI_CHAT_TEXT
    assert agent.flush()
    spans = {s.name: s for s in both["collector"].spans}
    [llm] = _llm_spans(both)
    assert llm.parent_id == spans["ask"].span_id and llm.trace_id == spans["RunnableSequence"].trace_id
    assert len({s.trace_id for s in both["collector"].spans}) == 1


def test_inside_an_llm_function_the_langchain_run_is_folded_into_it(both) -> None:
    model = _chat("openai_chat_completion.json")

    @observe(kind="llm", prompt_template="capital")
    def capital(question: str) -> str:
        return model.invoke(question).content

    assert capital(QUESTION) == OPENAI_CHAT_TEXT
    assert agent.flush()
    spans = both["collector"].spans
    assert len(spans) == 1, "one LLM call, one LLM span"
    a = spans[0].attributes
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.usage.input_tokens"] == 1843
    assert a["llmpulse.prompt.template"] == "capital" and a["llmpulse.cost.usd"] > 0
