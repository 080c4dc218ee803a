"""``instrument("anthropic")`` on recorded Anthropic interactions: messages, parameters, tools, thinking, cache
tokens, errors, ``create(stream=True)`` and ``messages.stream(...)`` sync and async, and every way a stream ends;
read back from chDB.

The bodies are the real recordings of opentelemetry-python-contrib's cassettes (``tests/fixtures/cassettes``),
replayed through the real ``anthropic`` client; no function is decorated.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

from llmpulse import agent
from tests.agent.integrations.cassettes import Cassette, anthropic_client
from tests.agent.integrations.recorded import cost, one_row, one_span, output_parts, recorded, replace_usage, rows

anthropic = pytest.importorskip("anthropic", reason="the anthropic integration replays through the real client")

INSTRUMENT = ("anthropic",)
MODEL = "claude-sonnet-4-20250514"
HELLO = [{"role": "user", "content": "Say hello in one word."}]
__all__ = ["recorded"]
# anthropic 2.x warns on requests for models it lists as deprecated (the recordings are of claude-sonnet-4)
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


def _client(name: str, *, async_: bool = False, **kwargs: Any) -> Any:
    return anthropic_client(Cassette(f"anthropic/{name}.yaml", **kwargs), async_=async_)


def _create(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, **kwargs)


# --- messages ---------------------------------------------------------------------------------------------------


def test_a_message_is_one_llm_span_with_model_tokens_cost_and_content(recorded, ch) -> None:
    message = _create(_client("test_sync_messages_create_basic"))
    assert isinstance(message, anthropic.types.Message) and message.content[0].text == "Hello!"
    row = one_row(ch, recorded)
    assert (row["Provider"], row["Operation"], row["RequestModel"], row["ResponseModel"]) == (
        "anthropic",
        "chat",
        MODEL,
        MODEL,
    )
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadInputTokens"], row["CacheCreationInputTokens"]) == (
        13,
        5,
        0,
        0,
    )
    assert row["CostUSD"] == pytest.approx(cost(MODEL, 13, 5, 0, 0))
    assert row["PromptText"] == "Say hello in one word." and row["ResponseText"] == "Hello!"
    assert row["FinishReasons"] == ["end_turn"] and row["MaxTokens"] == 100 and row["Stream"] is False


def test_async_messages_parameters_and_stop_reason(recorded, ch) -> None:
    async def run() -> list[str]:
        texts = []
        client = _client("test_async_messages_create_with_all_params", async_=True)
        for _ in range(3):
            message = await client.messages.create(
                model=MODEL,
                max_tokens=50,
                messages=[{"role": "user", "content": "Say hello."}],
                stop_sequences=["STOP"],
                # anthropic 2.x dropped the sampling keywords: they travel in the body, and are still recorded
                extra_body={"temperature": 0.7, "top_p": 0.9, "top_k": 40},
            )
            texts.append(message.content[0].text)
        stop = await _client("test_async_messages_create_stop_reason", async_=True).messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hi."}]
        )
        texts.append(stop.content[0].text)
        return texts

    texts = asyncio.run(run())
    found = rows(ch, recorded)
    assert [r["ResponseText"] for r in found] == texts
    first = found[0]
    assert (first["Temperature"], first["TopP"], first["MaxTokens"]) == (0.7, 0.9, 50)
    a = recorded["collector"].spans[0].attributes
    assert a["gen_ai.request.top_k"] == 40 and a["gen_ai.request.stop_sequences"] == ["STOP"]
    assert found[-1]["FinishReasons"] == ["end_turn"] and (found[-1]["InputTokens"], found[-1]["OutputTokens"]) == (
        10,
        11,
    )


def test_tool_use_is_recorded_as_a_tool_call(recorded, ch) -> None:
    client = _client("test_sync_messages_create_captures_tool_use_content")
    client.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "What is the weather in SF?"}],
        tools=[
            {
                "name": "get_weather",
                "description": "Get weather by city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }
        ],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    row = one_row(ch, recorded)
    call = next(p for p in output_parts(row) if p["type"] == "tool_call")
    assert call["name"] == "get_weather" and "city" in call["arguments"]
    assert row["FinishReasons"] == ["tool_use"] and json.loads(row["RequestParams"])["tool_choice"] == "tool"


def test_thinking_is_recorded_as_reasoning_and_charged_as_output(recorded, ch) -> None:
    """Anthropic counts thinking inside ``output_tokens`` (it reports no separate count): charged once."""
    message = _client("test_sync_messages_create_captures_thinking_content").messages.create(
        model=MODEL,
        max_tokens=16000,
        messages=[{"role": "user", "content": "What is 17*19? Think first."}],
        thinking={"type": "enabled", "budget_tokens": 10000},
    )
    row = one_row(ch, recorded)
    parts = output_parts(row)
    assert [p["type"] for p in parts] == ["reasoning", "text"]
    assert parts[0]["content"] == message.content[0].thinking and "323" in row["ResponseText"]
    assert (row["InputTokens"], row["OutputTokens"]) == (46, 378)
    assert row["CostUSD"] == pytest.approx(cost(MODEL, 46, 378, 0, 0))
    params = json.loads(row["RequestParams"])
    assert params["thinking_type"] == "enabled" and params["thinking_budget_tokens"] == 10000


# Anthropic's prompt-caching usage (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching): cache reads
# and writes are reported ON TOP of input_tokens. The recordings carry zeros; these blocks, in that documented shape,
# replace them so the accounting is tested on non-zero values.
CACHED_USAGE = {
    "input_tokens": 13,
    "cache_creation_input_tokens": 1200,
    "cache_read_input_tokens": 2048,
    "cache_creation": {"ephemeral_5m_input_tokens": 1200, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 5,
    "service_tier": "standard",
}
EXPECTED_CACHED_COST = (13 * 3.0 + 2048 * 0.3 + 1200 * 3.75 + 5 * 15.0) / 1e6  # each part at its own price, once


def test_cache_tokens_are_added_to_the_input_and_each_charged_at_its_price(recorded, ch) -> None:
    client = _client("test_sync_messages_create_aggregates_cache_tokens", rewrite=replace_usage(CACHED_USAGE))
    message = _create(client)
    assert message.usage.cache_read_input_tokens == 2048
    row = one_row(ch, recorded)
    # gen_ai.usage.input_tokens (OTel GenAI): every input token, cached ones included = 13 + 2048 + 1200
    assert (row["InputTokens"], row["CacheReadInputTokens"], row["CacheCreationInputTokens"]) == (3261, 2048, 1200)
    assert row["OutputTokens"] == 5 and row["CostUSD"] == pytest.approx(EXPECTED_CACHED_COST)


def test_streamed_cache_tokens(recorded, ch) -> None:
    start = {**CACHED_USAGE, "output_tokens": 2}
    delta = {
        key: CACHED_USAGE[key] for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    delta["output_tokens"] = 5
    client = _client("test_sync_messages_create_streaming_aggregates_cache_tokens", rewrite=replace_usage(start, delta))
    with _create(client, stream=True) as stream:
        list(stream)
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["CacheReadInputTokens"], row["CacheCreationInputTokens"], row["OutputTokens"]) == (
        3261,
        2048,
        1200,
        5,
    )
    assert row["CostUSD"] == pytest.approx(EXPECTED_CACHED_COST)


def test_api_errors_are_recorded_and_raised_unchanged(recorded, ch) -> None:
    async def run() -> int:
        client = _client("test_async_messages_create_api_error", async_=True)
        failures = 0
        for _ in range(3):
            try:
                await client.messages.create(
                    model="invalid-model-name", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
                )
            except anthropic.NotFoundError:
                failures += 1
        return failures

    assert asyncio.run(run()) == 3
    with pytest.raises(anthropic.NotFoundError):
        with _client("test_sync_messages_stream_api_error").messages.stream(
            model="invalid-model-name", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
        ) as stream:
            list(stream)
    found = rows(ch, recorded)
    assert len(found) == 4 and all(r["ErrorType"] == "NotFoundError" and r["StatusCode"] == "Error" for r in found)
    assert all(r["RequestModel"] == "invalid-model-name" and r["InputTokens"] is None for r in found)


def test_a_raw_response_goes_back_unchanged(recorded, ch) -> None:
    raw = _client("test_sync_messages_create_basic").messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=HELLO
    )
    assert isinstance(raw, anthropic._response.APIResponse) and raw.parse().content[0].text == "Hello!"
    row = one_row(ch, recorded)
    assert row["ResponseText"] == "Hello!" and (row["InputTokens"], row["OutputTokens"]) == (13, 5)


# --- create(stream=True) --------------------------------------------------------------------------------------


def test_a_stream_read_to_the_end_then_closed_ends_once(recorded, ch) -> None:
    stream = _create(_client("test_stream_wrapper_finalize_idempotent"), stream=True)
    events = list(stream)
    stream.close()
    stream.close()
    assert events[-1].type == "message_stop"
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["OutputTokens"]) == (13, 5) and row["ResponseText"] == "Hello!"
    assert row["FinishReasons"] == ["end_turn"] and row["TimeToFirstTokenSeconds"] > 0
    assert one_span(recorded).attributes["llmpulse.stream.state"] == "completed"


def test_async_stream_and_the_stream_as_a_context_manager(recorded, ch) -> None:
    async def run() -> None:
        stream = await _client("test_async_messages_create_streaming", async_=True).messages.create(
            model=MODEL, max_tokens=100, messages=HELLO, stream=True
        )
        async with stream:
            async for _ in stream:
                pass

    asyncio.run(run())
    with _create(_client("test_sync_messages_create_streaming_captures_content"), stream=True) as stream:
        for _ in stream:
            pass
    iteration = _client("test_sync_messages_create_streaming_iteration").messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Say hi."}], stream=True
    )
    assert len(list(iteration)) > 0
    found = rows(ch, recorded)
    assert len(found) == 3 and all(r["OutputTokens"] and r["FinishReasons"] == ["end_turn"] for r in found)
    assert all(s.attributes["llmpulse.stream.state"] == "completed" for s in recorded["collector"].spans)


@pytest.mark.parametrize("how", ["closed_early", "dropped"])
def test_a_stream_left_early_keeps_what_it_read(recorded, ch, how: str) -> None:
    name = (
        "test_sync_messages_stream_closed_early_by_caller"
        if how == "closed_early"
        else "test_sync_messages_stream_interrupted_mid_iteration"
    )
    stream = _create(_client(name), stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    if how == "closed_early":
        stream.close()
        stream.close()
    else:
        del stream
        gc.collect()
    row = one_row(ch, recorded)
    span = one_span(recorded)
    assert span.attributes["llmpulse.stream.state"] == "abandoned" and span.status_code == "Unset"
    assert row["ResponseText"] == "Hello!" and row["FinishReasons"] == []
    # message_start already reported the input; its output count (2) is the running one at that point
    assert (row["InputTokens"], row["OutputTokens"]) == (13, 2) and row["CostUSD"] == pytest.approx(
        cost(MODEL, 13, 2, 0, 0)
    )


def test_an_exception_raised_while_reading_fails_the_span(recorded, ch) -> None:
    with pytest.raises(ValueError, match="User raised exception"):
        with _create(_client("test_sync_messages_stream_user_exception"), stream=True) as stream:
            for _ in stream:
                raise ValueError("User raised exception")
    row = one_row(ch, recorded)
    assert row["StatusCode"] == "Error" and row["ErrorType"] == "ValueError"
    assert one_span(recorded).attributes["llmpulse.stream.state"] == "failed"


# --- messages.stream(...) -------------------------------------------------------------------------------------


def test_the_stream_manager_is_one_span_however_the_app_reads_it(recorded, ch) -> None:
    cassette = Cassette("anthropic/test_sync_messages_stream_basic.yaml")  # 5 recorded requests, the 2nd a 401
    client = anthropic_client(cassette)

    def stream() -> Any:
        return client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO)

    with stream() as s:
        texts = ["".join(s.text_stream)]
    with pytest.raises(anthropic.AuthenticationError), stream() as s:
        pass
    with stream() as s:
        texts.append(s.get_final_text())
    with stream() as s:
        texts.append("".join(e.delta.text for e in s if e.type == "content_block_delta"))
    with stream() as s:
        s.until_done()
        texts.append(s.get_final_message().content[0].text)
    assert len(cassette.requests) == 5

    found = rows(ch, recorded)
    assert len(found) == 5, "one span per stream() call"
    ok = [r for r in found if r["StatusCode"] != "Error"]
    assert [r["ResponseText"] for r in ok] == texts and all(r["OutputTokens"] and r["Stream"] for r in ok)
    assert [r["ErrorType"] for r in found if r["StatusCode"] == "Error"] == ["AuthenticationError"]
    states = [s.attributes.get("llmpulse.stream.state") for s in recorded["collector"].spans]
    assert states.count("completed") == 4


@pytest.mark.parametrize("how", ["break", "exception", "double_exit"])
def test_the_stream_manager_left_early(recorded, ch, how: str) -> None:
    manager = _client("test_sync_messages_stream").messages.stream(model=MODEL, max_tokens=100, messages=HELLO)
    try:
        with manager as stream:
            for event in stream:
                if event.type == "text":
                    if how == "exception":
                        raise KeyError("stop")
                    break
    except KeyError:
        pass
    if how == "double_exit":
        manager.__exit__(None, None, None)
    row = one_row(ch, recorded)
    state = one_span(recorded).attributes["llmpulse.stream.state"]
    assert state == ("failed" if how == "exception" else "abandoned")
    assert row["ErrorType"] == ("KeyError" if how == "exception" else "")
    assert row["ResponseText"] == "Hello!" and row["InputTokens"] == 13


def test_async_stream_manager(recorded, ch) -> None:
    async def run() -> list[str]:
        client = _client("test_async_messages_stream_basic", async_=True)
        texts = []
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            texts.append("".join([t async for t in stream.text_stream]))
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            texts.append((await stream.get_final_message()).content[0].text)
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            async for event in stream:
                if event.type == "text":
                    break
            texts.append(event.snapshot)
        return texts

    texts = asyncio.run(run())
    found = rows(ch, recorded)
    assert [r["ResponseText"] for r in found] == texts
    states = [s.attributes["llmpulse.stream.state"] for s in recorded["collector"].spans]
    assert states == ["completed", "completed", "abandoned"]
    assert agent.stats().streams_without_usage == 0, "Anthropic streams report usage in message_start"


@pytest.mark.parametrize(
    ("name", "content", "async_", "tokens"),
    [
        ("test_async_messages_create_basic", "Say hello in one word.", True, (13, 5)),
        ("test_async_messages_create_token_usage", "Count to 5.", True, (12, 13)),
        ("test_sync_messages_create_captures_content", "Say hello in one word.", False, (13, 5)),
    ],
)
def test_more_recorded_messages(recorded, ch, name: str, content: str, async_: bool, tokens: tuple) -> None:
    client = _client(name, async_=async_)
    request = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": content}]}
    message = asyncio.run(client.messages.create(**request)) if async_ else client.messages.create(**request)
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["OutputTokens"]) == tokens and row["ResponseText"] == message.content[0].text
    assert json.loads(row["InputMessages"])[0]["parts"][0]["content"] == content
