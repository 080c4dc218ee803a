"""The rules of auto-instrumentation, on the real openai client over an in-process transport.

One LLM call makes one LLM span: alone it is a root; inside ``@observe(kind="chain")`` it nests; inside
``@observe(kind="llm")`` it is folded into that span (which gains the call's model, tokens and cost); inside
an ``auto`` span it is the LLM span and the enclosing one a chain step. Patching is idempotent and undone
by ``uninstrument``; ``instrument("threads")`` carries the span into thread pools.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from llmpulse.agent import ConfigError, configure, in_current_context, instrument, instrumented, observe, uninstrument
from llmpulse.agent.integrations import InstrumentError

from llmpulse import agent
from tests.agent.provider_fakes import OPENAI_CHAT_TEXT, FixtureServer, openai_client

openai = pytest.importorskip("openai")

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def instrumented_openai(configured: dict[str, Any]) -> Iterator[dict[str, Any]]:
    instrument("openai")
    try:
        yield configured
    finally:
        uninstrument()


def _ask(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0.3)


def test_a_plain_client_call_is_one_root_llm_span(instrumented_openai, ch) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))
    completion = _ask(client)
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.choices[0].message.content == OPENAI_CHAT_TEXT
    assert agent.flush()
    spans = instrumented_openai["collector"].spans
    assert len(spans) == 1
    span = spans[0]
    assert span.is_llm and span.parent_id == 0 and span.name.startswith("chat gpt-4o-mini")
    a = span.attributes
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.usage.input_tokens"] > 0 and a["llmpulse.cost.usd"] > 0
    row = ch.query(
        "SELECT RequestModel, InputTokens, CostUSD, ResponseText FROM {db:Identifier}.llm_calls WHERE SpanId = {s:String}",
        parameters={"db": instrumented_openai["database"], "s": f"{span.span_id:016x}"},
    ).result_rows
    assert row and row[0][0] == "gpt-4o-mini" and row[0][1] == a["gen_ai.usage.input_tokens"]
    assert OPENAI_CHAT_TEXT in row[0][3]


def test_inside_a_chain_the_call_nests(instrumented_openai) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))

    @observe(kind="chain")
    def pipeline() -> str:
        return _ask(client).choices[0].message.content

    assert pipeline() == OPENAI_CHAT_TEXT
    assert agent.flush()
    spans = {s.name: s for s in instrumented_openai["collector"].spans}
    chain = spans[pipeline.__qualname__]
    llm = next(s for s in spans.values() if s.is_llm)
    assert llm.parent_id == chain.span_id and llm.trace_id == chain.trace_id
    assert not chain.is_llm and len(spans) == 2


def test_inside_an_llm_function_the_call_is_folded_into_it(instrumented_openai) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))

    @observe(kind="llm", prompt_template="capital")
    def answer(question: str) -> str:  # returns the text only: model and usage come from the folded call
        return _ask(client).choices[0].message.content

    assert answer("France?") == OPENAI_CHAT_TEXT
    assert agent.flush()
    spans = instrumented_openai["collector"].spans
    assert len(spans) == 1, "one LLM call, one LLM span"
    a = spans[0].attributes
    assert spans[0].is_llm and a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["llmpulse.cost.usd"] > 0
    assert a["llmpulse.prompt.template"] == "capital"


def test_inside_an_auto_function_returning_the_response_the_call_is_the_llm_span(instrumented_openai) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))

    @observe
    def ask(model: str, messages: list) -> Any:
        return client.chat.completions.create(model=model, messages=messages)

    ask("gpt-4o-mini", QUESTION)
    assert agent.flush()
    spans = instrumented_openai["collector"].spans
    llm = [s for s in spans if s.is_llm]
    assert len(spans) == 2 and len(llm) == 1
    outer = next(s for s in spans if not s.is_llm)
    assert llm[0].parent_id == outer.span_id


def test_instrument_is_idempotent_and_uninstrument_restores(configured) -> None:
    original = openai.resources.chat.completions.Completions.create
    assert instrument("openai") == ["openai"]
    patched = openai.resources.chat.completions.Completions.create
    assert patched is not original
    assert instrument("openai") == ["openai"] and openai.resources.chat.completions.Completions.create is patched
    assert instrumented() == ["openai"]
    assert uninstrument() == []
    assert openai.resources.chat.completions.Completions.create is original
    client = openai_client(FixtureServer("openai_chat_completion.json"))
    _ask(client)
    assert agent.flush() and configured["collector"].spans == []


def test_unknown_names_are_clear_errors(configured, store_dsn, monkeypatch) -> None:
    with pytest.raises(InstrumentError, match="unknown integration 'opneai': choose from openai, anthropic"):
        instrument("opneai")
    with pytest.raises(ConfigError, match="instrument=: unknown integration 'nope'"):
        configure(store_dsn, database=configured["database"], instrument=["nope"])
    monkeypatch.setenv("LLMPULSE_INSTRUMENT", "openai, bogus")
    with pytest.raises(ConfigError, match=r"\$LLMPULSE_INSTRUMENT: unknown integration 'bogus'"):
        configure(store_dsn, database=configured["database"])


def test_configure_instruments_from_the_environment(configured, store_dsn, monkeypatch) -> None:
    monkeypatch.setenv("LLMPULSE_INSTRUMENT", "openai")
    try:
        configure(store_dsn, database=configured["database"], span_exporters=[configured["collector"]])
        assert instrumented() == ["openai"]
        _ask(openai_client(FixtureServer("openai_chat_completion.json")))
        assert agent.flush() and len(configured["collector"].spans) == 1
    finally:
        uninstrument()


def test_a_failing_call_is_recorded_and_its_exception_passes_through(instrumented_openai) -> None:
    client = openai_client(FixtureServer("openai_error_rate_limit.json", status_code=429))
    with pytest.raises(openai.RateLimitError):
        _ask(client)
    assert agent.flush()
    [span] = instrumented_openai["collector"].spans
    assert span.status_code == "Error" and span.attributes["error.type"] == "RateLimitError"


def test_threads_carry_the_span_into_a_pool_when_instrumented(instrumented_openai) -> None:
    client = openai_client(FixtureServer("openai_chat_completion.json"))

    @observe(kind="chain")
    def fan_out(submit: Any) -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: None, range(1)))
            submit(pool, lambda: _ask(client)).result()

    fan_out(lambda pool, fn: pool.submit(fn))  # not instrumented: a new trace in the worker
    fan_out(lambda pool, fn: pool.submit(in_current_context(fn)))  # the helper
    instrument("threads")
    fan_out(lambda pool, fn: pool.submit(fn))  # the patch
    done = threading.Event()

    @observe(kind="chain")
    def in_thread() -> None:
        thread = threading.Thread(target=lambda: (_ask(client), done.set()))
        thread.start()
        thread.join()

    in_thread()
    assert done.is_set() and agent.flush()
    spans = instrumented_openai["collector"].spans
    chains = [s for s in spans if not s.is_llm]
    llms = [s for s in spans if s.is_llm]
    assert len(chains) == 4 and len(llms) == 4
    nested = [llm for llm in llms if any(llm.parent_id == c.span_id for c in chains)]
    assert len(nested) == 3, "only the uninstrumented, unwrapped submit loses its parent"
