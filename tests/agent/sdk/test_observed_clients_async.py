"""End to end, async clients, errors and cost: app code under ``@observe`` calls the real openai / anthropic clients (in-process fake server).

Each test checks both what the finished span says (the ``configured`` fixture's span collector) and the row the
materialized view derives in ``llm_calls``. Request parameters come from the decorated function's own arguments,
so the functions below take ``model, messages, **params`` and forward them to the client (the documented pattern).
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from llmpulse.agent import observe

from llmpulse import agent
from tests.agent.provider_fakes import (
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_TEXT,
    OPENAI_CHAT_TEXT,
    OPENAI_STREAM_TEXT,
    FixtureServer,
    anthropic_client,
    openai_client,
)
from tests.agent.sdk.observed import (
    LOGPROBS_TEXT,
    PRICES,
    QUESTION,
    _assert_cost,
    _ResetMidStream,
    _row,
    _rows,
    _text,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

# The recorded Anthropic bodies come from claude-*-4-5 models, which anthropic 2.x flags as deprecated on request.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


# --------------------------------------------------------------------------------------------------------------------
# 5. async clients
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_openai_chat(configured, ch) -> None:
    server = FixtureServer("openai_chat_completion_logprobs.json")
    client = openai_client(server, async_=True)

    @observe
    async def ask(model: str, messages: list, **params: Any) -> Any:
        return await client.chat.completions.create(model=model, messages=messages, **params)

    completion = await ask(model="gpt-4o-mini", messages=QUESTION, max_completion_tokens=40, seed=7)
    assert completion.choices[0].message.content == LOGPROBS_TEXT
    assert server.last_json["max_completion_tokens"] == 40
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert a["gen_ai.request.max_tokens"] == 40 and a["gen_ai.request.seed"] == 7
    assert a["gen_ai.usage.input_tokens"] == 24 and a["gen_ai.usage.output_tokens"] == 7
    assert "gen_ai.request.stream" not in a
    row = _row(ch, configured)
    assert row["MaxTokens"] == 40 and (row["InputTokens"], row["OutputTokens"]) == (24, 7)
    assert row["ResponseText"] == LOGPROBS_TEXT and row["StatusCode"] == "Unset"
    _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 24, 7, 0)


@pytest.mark.asyncio
async def test_async_openai_chat_stream(configured, ch) -> None:
    client = openai_client(FixtureServer("openai_chat_stream.sse"), async_=True)

    @observe
    async def chat_stream(model: str, messages: list, **params: Any) -> Any:
        return await client.chat.completions.create(model=model, messages=messages, stream=True, **params)

    stream = await chat_stream(model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True})
    assert not agent.stats().enqueued
    chunks = [chunk async for chunk in stream]
    assert _text(chunks) == OPENAI_STREAM_TEXT
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["llmpulse.stream.state"] == "completed"
    assert 0 < a["gen_ai.response.time_to_first_chunk"] <= (span.end_ns - span.start_ns) / 1e9
    assert a["gen_ai.usage.input_tokens"] == 19 and a["gen_ai.usage.output_tokens"] == 19
    row = _row(ch, configured)
    assert row["Stream"] is True and row["TimeToFirstTokenSeconds"] > 0
    assert row["OutputTokens"] == 19 and row["ResponseText"] == OPENAI_STREAM_TEXT
    _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 19, 19, 0)


@pytest.mark.asyncio
async def test_async_openai_stream_async_with_and_early_exit(configured, ch) -> None:
    client = openai_client(FixtureServer("openai_chat_stream.sse"), async_=True)

    @observe
    async def chat_stream(model: str, messages: list, **params: Any) -> Any:
        return await client.chat.completions.create(model=model, messages=messages, stream=True, **params)

    async with await chat_stream(model="gpt-4o-mini", messages=QUESTION) as stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content == "The":
                break
    stream_two = await chat_stream(model="gpt-4o", messages=QUESTION)
    await stream_two.__anext__()
    await stream_two.aclose()
    assert agent.flush()

    c = configured["collector"]
    for name in ("chat gpt-4o-mini", "chat gpt-4o"):
        a = c.one(name).attributes
        assert a["llmpulse.stream.state"] == "abandoned" and a["gen_ai.response.time_to_first_chunk"] > 0
    assert c.one("chat gpt-4o-mini").attributes["llmpulse.output.text"] == "The"
    assert {r["RequestModel"] for r in _rows(ch, configured)} == {"gpt-4o-mini", "gpt-4o"}


@pytest.mark.asyncio
async def test_async_anthropic_message_and_stream(configured, ch) -> None:
    client = anthropic_client(FixtureServer("anthropic_message.json", "anthropic_stream.sse"), async_=True)

    @observe
    async def ask(model: str, messages: list, **params: Any) -> Any:
        return await client.messages.create(model=model, messages=messages, **params)

    message = await ask(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Refund?"}], max_tokens=64)
    assert message.content[0].text == ANTHROPIC_TEXT
    stream = await ask(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hi"}], max_tokens=64, stream=True
    )
    events = [event async for event in stream]
    assert events[-1].type == "message_stop"
    assert agent.flush()

    c = configured["collector"]
    plain, streamed = c.one("chat claude-sonnet-4-5"), c.one("chat claude-haiku-4-5")
    assert plain.attributes["gen_ai.usage.input_tokens"] == 2317 and "gen_ai.request.stream" not in plain.attributes
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert streamed.attributes["llmpulse.stream.state"] == "completed"
    assert streamed.attributes["gen_ai.usage.input_tokens"] == 1042
    assert streamed.attributes["llmpulse.output.text"] == ANTHROPIC_STREAM_TEXT
    rows = {r["RequestModel"]: r for r in _rows(ch, configured)}
    assert rows["claude-sonnet-4-5"]["CacheCreationInputTokens"] == 248
    assert rows["claude-haiku-4-5"]["TimeToFirstTokenSeconds"] > 0
    assert rows["claude-haiku-4-5"]["Stream"] is True and rows["claude-sonnet-4-5"]["Stream"] is False


@pytest.mark.asyncio
async def test_async_anthropic_stream_connection_lost_midway(configured, ch) -> None:
    client = anthropic_client(_ResetMidStream("anthropic_stream.sse", keep=5), async_=True)

    @observe
    async def ask_stream(model: str, messages: list, **params: Any) -> Any:
        return await client.messages.create(model=model, messages=messages, **params)

    stream = await ask_stream(model="claude-haiku-4-5", messages=QUESTION, max_tokens=256, stream=True)
    received = []
    # anthropic 2.x lets the transport's ReadError through mid-stream (openai wraps it in APIConnectionError)
    with pytest.raises((anthropic.APIConnectionError, httpx2.ReadError)) as info:
        async for event in stream:
            received.append(event)
    assert [e.type for e in received][:2] == ["message_start", "content_block_start"]
    assert agent.flush()

    span = configured["collector"].one("chat claude-haiku-4-5")
    a = span.attributes
    error_type = type(info.value).__qualname__
    assert span.status_code == "Error" and a["error.type"] == error_type
    assert span.status_message == str(info.value)
    assert a["llmpulse.stream.state"] == "failed" and a["gen_ai.request.stream"] is True
    assert a["llmpulse.output.text"] == "Observability means you can ask new questions"
    assert a["gen_ai.usage.input_tokens"] == 1042
    row = _row(ch, configured)
    assert (row["StatusCode"], row["ErrorType"]) == ("Error", error_type) and row["Stream"] is True


# --------------------------------------------------------------------------------------------------------------------
# 6. errors raised by the client
# --------------------------------------------------------------------------------------------------------------------


def _assert_rate_limited(configured: dict[str, Any], ch: Any, name: str = "chat gpt-4o-mini") -> None:
    span = configured["collector"].one(name)
    assert span.is_llm and span.status_code == "Error"
    assert span.attributes["error.type"] == "RateLimitError"
    assert "Rate limit reached for gpt-4o-mini" in span.status_message
    assert span.events and span.events[0][1] == "exception"
    assert span.events[0][2]["exception.type"] == "RateLimitError"
    assert "gen_ai.usage.input_tokens" not in span.attributes and "llmpulse.cost.usd" not in span.attributes
    row = _row(ch, configured)
    assert (row["StatusCode"], row["ErrorType"]) == ("Error", "RateLimitError")
    assert row["RequestModel"] == "gpt-4o-mini" and row["Provider"] == "openai"
    assert row["InputTokens"] is None and row["CostUSD"] is None


def test_sync_rate_limit_error_propagates_unchanged(configured, ch) -> None:
    client = openai_client(FixtureServer("openai_error_rate_limit.json", status_code=429))
    raised: list[BaseException] = []

    @observe
    def ask(model: str, messages: list, **params: Any) -> Any:
        try:
            return client.chat.completions.create(model=model, messages=messages, **params)
        except openai.RateLimitError as exc:
            raised.append(exc)
            raise

    with pytest.raises(openai.RateLimitError) as info:
        ask(model="gpt-4o-mini", messages=QUESTION, temperature=0.1)
    assert info.value is raised[0]
    assert info.value.status_code == 429 and info.value.code == "rate_limit_exceeded"
    assert agent.flush()
    _assert_rate_limited(configured, ch)
    assert _row(ch, configured)["Temperature"] == 0.1


@pytest.mark.asyncio
async def test_async_rate_limit_error_on_a_stream_request(configured, ch) -> None:
    client = openai_client(FixtureServer("openai_error_rate_limit.json", status_code=429), async_=True)
    raised: list[BaseException] = []

    @observe
    async def chat_stream(model: str, messages: list, **params: Any) -> Any:
        try:
            return await client.chat.completions.create(model=model, messages=messages, **params)
        except openai.RateLimitError as exc:
            raised.append(exc)
            raise

    with pytest.raises(openai.RateLimitError) as info:
        await chat_stream(model="gpt-4o-mini", messages=QUESTION, stream=True)
    assert info.value is raised[0] and info.value.status_code == 429
    assert agent.flush()
    _assert_rate_limited(configured, ch)
    span = configured["collector"].one("chat gpt-4o-mini")
    assert span.attributes["gen_ai.request.stream"] is True, "the call asked for a stream (stream=True was forwarded)"
    assert "llmpulse.stream.state" not in span.attributes, "no stream was ever returned"


# --------------------------------------------------------------------------------------------------------------------
# 7. cost of a reasoning model with cached input
# --------------------------------------------------------------------------------------------------------------------


def test_cost_of_cached_and_reasoning_tokens_matches_the_price_table(configured, ch) -> None:
    client = openai_client("openai_chat_completion.json")

    @observe
    def ask(model: str, messages: list, **params: Any) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **params)

    assert ask(model="o4-mini", messages=QUESTION).choices[0].message.content == OPENAI_CHAT_TEXT
    assert agent.flush()
    span = configured["collector"].one("chat o4-mini")
    row = _row(ch, configured)
    assert (row["InputTokens"], row["OutputTokens"]) == (1843, 212)
    assert (row["CacheReadInputTokens"], row["ReasoningOutputTokens"]) == (1536, 192)
    assert row["ResponseModel"] == "o4-mini-2025-04-16"
    _assert_cost(span, row, "o4-mini-2025-04-16", 1843, 212, 1536)
    price = PRICES.lookup("o4-mini")
    assert price is not None
    cache_read = price.input_per_mtok if price.cache_read_per_mtok is None else price.cache_read_per_mtok
    by_hand = ((1843 - 1536) * price.input_per_mtok + 1536 * cache_read + 212 * price.output_per_mtok) / 1e6
    assert row["CostUSD"] == pytest.approx(by_hand)
