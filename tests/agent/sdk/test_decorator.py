"""@observe on the four kinds of function: spans, nesting, errors, cancellation and abandoned streams."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from llmpulse.agent import attributes, observe, update_current_span

from llmpulse import agent

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def _chunks(words: list[str], model: str = "gpt-4o-mini") -> list[dict]:
    chunks = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {"content": w}}],
        }
        for w in words
    ]
    chunks.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(words)},
        }
    )
    return chunks


class Boom(Exception):
    pass


def test_noop_before_configure() -> None:
    calls = []

    @observe
    def f(x: int) -> int:
        calls.append(x)
        return x * 2

    assert not agent.is_configured()
    assert f(21) == 42
    assert calls == [21]
    assert agent.flush() is True
    assert agent.stats().enqueued == 0


def test_observe_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match="unknown option"):
        observe(modle="gpt-4o")
    with pytest.raises(ValueError, match="kind"):
        observe(kind="agent")


def test_sync_llm_call_records_genai_attributes(configured) -> None:
    @observe(prompt_template="capital", prompt_version="v2", model_version="2024-07-18", quantization="fp16")
    def ask(model: str, messages: list, temperature: float = 0.0, max_tokens: int = 50, top_p: float = 1.0):
        return CHAT

    messages = [{"role": "user", "content": "Capital of France? Mail me at bob@example.com"}]
    result = ask(model="gpt-4o-mini", messages=messages, temperature=0.3, max_tokens=64, top_p=0.9)
    messages.append({"role": "assistant", "content": "later mutation must not be captured"})
    assert result is CHAT
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert span.kind == "Client" and span.is_llm
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert a["llmpulse.prompt.template"] == "capital" and a["llmpulse.prompt.version"] == "v2"
    assert a["llmpulse.model.version"] == "2024-07-18" and a["llmpulse.model.quantization"] == "fp16"
    assert a["llmpulse.cost.usd"] > 0
    captured = json.loads(a["gen_ai.input.messages"])
    assert len(captured) == 1, "the list was mutated after the call; the span must hold the call-time snapshot"
    assert "bob@example.com" not in a["gen_ai.input.messages"] and "[REDACTED_EMAIL]" in a["gen_ai.input.messages"]
    assert a["llmpulse.output.text"] == "Paris."
    assert span.end_ns >= span.start_ns


def test_user_exception_passes_through_unchanged(configured) -> None:
    error = Boom("model refused")

    @observe(model="gpt-4o")
    def ask() -> None:
        raise error

    with pytest.raises(Boom) as info:
        ask()
    assert info.value is error
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o")
    assert span.status_code == "Error"
    assert span.attributes["error.type"] == "Boom"
    assert span.status_message == "model refused"
    assert span.events[0][1] == "exception"
    assert "Boom" in span.events[0][2]["exception.stacktrace"]


def test_chain_nests_llm_and_tool_spans(configured) -> None:
    @observe(kind="tool")
    def search(query: str) -> list[str]:
        return ["doc one", "doc two"]

    @observe(model="gpt-4o-mini", context_arg="docs")
    def generate(question: str, docs: list[str]) -> str:
        return "answer"

    @observe
    def pipeline(question: str) -> str:
        return generate(question, search(question))

    assert pipeline("why?") == "answer"
    assert agent.flush()
    c = configured["collector"]
    root, tool, llm = (
        c.one("test_chain_nests_llm_and_tool_spans.<locals>.pipeline"),
        c.one("execute_tool test_chain_nests_llm_and_tool_spans.<locals>.search"),
        c.one("chat gpt-4o-mini"),
    )
    assert root.parent_id == 0 and root.attributes["llmpulse.span.type"] == "chain"
    assert tool.parent_id == root.span_id and llm.parent_id == root.span_id
    assert {tool.trace_id, llm.trace_id} == {root.trace_id}
    assert tool.attributes["gen_ai.tool.name"].endswith("search")
    assert llm.attributes["llmpulse.rag.context"] == "doc one\n\ndoc two"
    assert json.loads(llm.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "why?"


def test_scoped_and_updated_attributes(configured) -> None:
    @observe(model="gpt-4o")
    def ask(q: str) -> str:
        update_current_span(session_id="s-override", attributes={"tenant": "acme"})
        return "ok"

    with attributes(user_id="u-1", session_id="s-1"):
        ask("hi")
    assert agent.flush()
    a = configured["collector"].one("chat gpt-4o").attributes
    assert a["user.id"] == "u-1" and a["session.id"] == "s-override" and a["tenant"] == "acme"


def test_async_function(configured) -> None:
    @observe
    async def ask(model: str, messages: list) -> dict:
        await asyncio.sleep(0.01)
        return CHAT

    @observe
    async def outer() -> list:
        return await asyncio.gather(ask(model="gpt-4o-mini", messages=[]), ask(model="gpt-4o-mini", messages=[]))

    assert len(asyncio.run(outer())) == 2
    assert agent.flush()
    c = configured["collector"]
    root = c.one("test_async_function.<locals>.outer")
    children = c.by_name("chat gpt-4o-mini")
    assert len(children) == 2 and all(s.parent_id == root.span_id for s in children)
    assert all((s.end_ns - s.start_ns) >= 10_000_000 for s in children)


def test_async_cancellation_recorded_and_propagated(configured) -> None:
    @observe(model="gpt-4o")
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o")
    assert span.attributes["error.type"] == "CancelledError"


def test_sync_generator_stream_records_ttft_and_usage(configured) -> None:
    @observe
    def stream(model: str, messages: list):
        yield from _chunks(["Hel", "lo", "!"])

    received = list(stream(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]))
    assert len(received) == 4
    assert agent.flush()
    a = configured["collector"].one("chat gpt-4o-mini").attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert a["gen_ai.usage.output_tokens"] == 3
    assert a["llmpulse.output.text"] == "Hello!"
    assert a["llmpulse.stream.state"] == "completed"


def test_function_returning_a_stream_is_wrapped(configured) -> None:
    def provider_stream():
        yield from _chunks(["a", "b"])

    @observe
    def call(model: str, messages: list):
        return provider_stream()

    out = call(model="gpt-4o-mini", messages=[])
    assert not agent.stats().enqueued, "the span must stay open until the stream is consumed"
    assert [c["choices"][0]["delta"].get("content") for c in out] == ["a", "b", None]
    assert agent.flush()
    assert configured["collector"].one("chat gpt-4o-mini").attributes["llmpulse.output.text"] == "ab"


@pytest.mark.parametrize("how", ["break", "close", "gc", "exception"])
def test_abandoned_sync_stream_still_ends_its_span(configured, how: str) -> None:
    @observe
    def stream(model: str, messages: list):
        yield from _chunks(["one", "two", "three", "four"])

    gen = stream(model="gpt-4o-mini", messages=[])
    if how == "break":
        for _ in gen:
            break
        del gen
    elif how == "close":
        next(gen)
        gen.close()
    elif how == "gc":
        next(gen)
        del gen
        gc.collect()
    else:
        next(gen)
        with pytest.raises(Boom):
            gen.throw(Boom("consumer failed"))
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o-mini")
    if how == "exception":
        assert span.attributes["error.type"] == "Boom"
    else:
        assert span.attributes["llmpulse.stream.state"] == "abandoned"
        assert span.attributes["llmpulse.output.text"] == "one"


def test_generator_error_midway(configured) -> None:
    @observe(model="gpt-4o")
    def stream():
        yield "part"
        raise Boom("connection reset")

    gen = stream()
    assert next(gen) == "part"
    with pytest.raises(Boom):
        next(gen)
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o")
    assert span.status_code == "Error" and span.attributes["llmpulse.stream.state"] == "failed"


def test_async_generator_stream_and_aclose(configured) -> None:
    @observe
    async def stream(model: str, messages: list):
        for chunk in _chunks(["x", "y", "z"]):
            await asyncio.sleep(0)
            yield chunk

    async def consume_all() -> int:
        return len([c async for c in stream(model="gpt-4o-mini", messages=[])])

    async def abandon() -> None:
        agen = stream(model="gpt-4o", messages=[])
        await agen.__anext__()
        await agen.aclose()

    assert asyncio.run(consume_all()) == 4
    asyncio.run(abandon())
    assert agent.flush()
    c = configured["collector"]
    assert c.one("chat gpt-4o-mini").attributes["llmpulse.stream.state"] == "completed"
    assert c.one("chat gpt-4o-mini").attributes["llmpulse.output.text"] == "xyz"
    assert c.one("chat gpt-4o").attributes["llmpulse.stream.state"] == "abandoned"


def test_async_generator_cancelled_and_timeout_inside_works(configured) -> None:
    @observe(model="gpt-4o")
    async def stream():
        yield "a"
        await asyncio.sleep(10)
        yield "b"

    async def main() -> None:
        agen = stream()
        async with asyncio.timeout(0.05) if hasattr(asyncio, "timeout") else _timeout_fallback():
            async for _ in agen:
                pass

    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        asyncio.run(main())
    assert agent.flush()
    span = configured["collector"].one("chat gpt-4o")
    assert span.attributes["error.type"] == "CancelledError"


class _timeout_fallback:  # Python 3.10 has no asyncio.timeout
    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        self._handle = loop.call_later(0.05, task.cancel)

    async def __aexit__(self, exc_type, *rest) -> bool:
        self._handle.cancel()
        if exc_type is asyncio.CancelledError:
            raise asyncio.TimeoutError
        return False


def test_instrumentation_errors_never_reach_the_app(store_dsn, database, tmp_path, collector) -> None:
    def broken_hook(text: str) -> str:
        raise RuntimeError("bad redaction hook")

    agent.configure(
        store_dsn, database=database, spool_dir=str(tmp_path / "s"), redact=broken_hook, span_exporters=[collector]
    )
    try:

        @observe(model="gpt-4o")
        def ask(q: str) -> str:
            return "fine"

        assert ask("hello") == "fine"
        assert agent.flush()
        s = agent.stats()
        assert s.dropped == 1 and s.dropped_by_reason == {"enrich_error": 1}
    finally:
        agent.shutdown()


def test_sampling_zero_records_nothing_but_runs_everything(store_dsn, database, tmp_path) -> None:
    agent.configure(store_dsn, database=database, spool_dir=str(tmp_path / "s"), sample_rate=0.0)
    try:

        @observe
        def inner() -> int:
            return 1

        @observe
        def outer() -> int:
            return inner() + 1

        assert outer() == 2
        assert agent.flush()
        assert agent.stats().enqueued == 0
    finally:
        agent.shutdown()


def test_capture_off_keeps_metrics_drops_content(store_dsn, database, tmp_path, collector) -> None:
    agent.configure(
        store_dsn, database=database, spool_dir=str(tmp_path / "s"), capture_content=False, span_exporters=[collector]
    )
    try:

        @observe
        def ask(model: str, messages: list) -> dict:
            return CHAT

        ask(model="gpt-4o-mini", messages=[{"role": "user", "content": "secret question"}])
        assert agent.flush()
        a = collector.one("chat gpt-4o-mini").attributes
        assert a["gen_ai.usage.input_tokens"] == 12
        assert not any(k in a for k in ("gen_ai.input.messages", "gen_ai.output.messages", "llmpulse.output.text"))
    finally:
        agent.shutdown()


def test_unknown_model_gets_null_cost_and_a_counter(configured) -> None:
    @observe
    def ask(model: str, messages: list) -> dict:
        return {**CHAT, "model": "my-private-finetune"}

    ask(model="my-private-finetune", messages=[])
    assert agent.flush()
    a = configured["collector"].one("chat my-private-finetune").attributes
    assert "llmpulse.cost.usd" not in a
    assert agent.stats().unknown_model_cost == 1


def test_secrets_in_responses_are_redacted_everywhere(configured) -> None:
    leaked = "sk-proj-abcdefghijklmnopqrstuvwx1234"

    @observe
    def ask(model: str, messages: list) -> dict:
        reply = {**CHAT["choices"][0], "message": {"role": "assistant", "content": f"the key is {leaked}"}}
        return {**CHAT, "choices": [reply]}

    ask(model="gpt-4o-mini", messages=[{"role": "user", "content": "what is the key?"}])
    assert agent.flush()
    a = configured["collector"].one("chat gpt-4o-mini").attributes
    assert leaked not in a["gen_ai.output.messages"] and leaked not in a["llmpulse.output.text"]
    assert a["llmpulse.output.text"] == "the key is [REDACTED_API_KEY]"
