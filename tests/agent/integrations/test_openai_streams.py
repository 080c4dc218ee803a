"""OpenAI streams under ``instrument("openai")``, on recorded SSE bodies: every way a stream ends ends its span
exactly once, with the output seen so far; a stream that reports no usage has NULL tokens and cost and is
counted; the stream managers (``.stream(...)``) and raw streaming responses make one span each.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

from llmpulse import agent
from tests.agent.integrations.cassettes import Cassette, openai_client
from tests.agent.integrations.recorded import PRICES, cost, one_row, output_parts, recorded, replace_usage, rows

openai = pytest.importorskip("openai", reason="the openai integration replays through the real client")

INSTRUMENT = ("openai",)
QUESTION = [{"role": "user", "content": "Say this is a test"}]
WEATHER = [
    {"role": "system", "content": "You're a helpful assistant."},
    {"role": "user", "content": "What's the weather in Seattle and San Francisco today?"},
]
__all__ = ["recorded"]


def _client(name: str, *, async_: bool = False) -> Any:
    return openai_client(Cassette(f"openai/{name}.yaml"), async_=async_)


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _gpt4_cost(inp: int, out: int) -> Any:
    """gpt-4 is not in the vendored table: litellm's list prices it when installed, else the cost is NULL."""
    expected = PRICES.span_cost(("gpt-4-0613", "gpt-4"), inp, out, 0)
    return None if expected is None else pytest.approx(expected)


# --- chat completion streams -----------------------------------------------------------------------------------


def test_a_complete_stream_with_usage(recorded, ch) -> None:
    stream = _client("test_chat_completion_streaming").chat.completions.create(
        model="gpt-4", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    assert _text(list(stream)) == "This is a test."
    row = one_row(ch, recorded)
    assert row["Stream"] is True and row["TimeToFirstTokenSeconds"] > 0
    assert (row["InputTokens"], row["OutputTokens"], row["ResponseModel"]) == (12, 5, "gpt-4-0613")
    assert row["ResponseText"] == "This is a test." and row["FinishReasons"] == ["stop"]
    assert row["CostUSD"] == _gpt4_cost(12, 5)
    span = recorded["collector"].spans[0]
    assert span.attributes["llmpulse.stream.state"] == "completed"
    assert agent.stats().streams_without_usage == 0


def test_a_stream_without_usage_has_null_tokens_and_cost_and_is_counted(recorded, ch) -> None:
    """Recorded without ``stream_options``: OpenAI sent no usage chunk. Not 0 tokens, not $0: unknown."""
    stream = _client("test_chat_completion_streaming_not_complete").chat.completions.create(
        model="gpt-4", messages=QUESTION, stream=True
    )
    assert _text(list(stream)) == "This is a test."
    row = one_row(ch, recorded)
    assert row["InputTokens"] is None and row["OutputTokens"] is None and row["CostUSD"] is None
    assert row["ResponseText"] == "This is a test." and row["FinishReasons"] == ["stop"]
    assert agent.stats().streams_without_usage == 1


def test_async_streams_with_and_without_usage(recorded, ch) -> None:
    async def consume() -> list[str]:
        texts = []
        for name, options in (
            ("test_async_chat_completion_streaming", {"stream_options": {"include_usage": True}}),
            ("test_async_chat_completion_streaming_not_complete", {}),
        ):
            stream = await _client(name, async_=True).chat.completions.create(
                model="gpt-4", messages=QUESTION, stream=True, **options
            )
            texts.append(_text([chunk async for chunk in stream]))
        return texts

    with_usage, without = asyncio.run(consume())
    first, second = rows(ch, recorded)
    assert first["ResponseText"] == with_usage and first["OutputTokens"] is not None
    assert second["ResponseText"] == without and second["OutputTokens"] is None and second["CostUSD"] is None
    assert agent.stats().streams_without_usage == 1


def test_stream_usage_asks_for_usage_in_the_request_the_server_saw(configured) -> None:
    agent.instrument("openai", stream_usage=True)
    try:
        cassette = Cassette("openai/test_chat_completion_streaming_not_complete.yaml")
        list(openai_client(cassette).chat.completions.create(model="gpt-4", messages=QUESTION, stream=True))
        assert cassette.requests[0].json["stream_options"] == {"include_usage": True}

        cassette = Cassette("openai/test_chat_completion_streaming.yaml")
        options = {"include_usage": False}
        list(
            openai_client(cassette).chat.completions.create(
                model="gpt-4", messages=QUESTION, stream=True, stream_options=options
            )
        )
        assert cassette.requests[0].json["stream_options"] == options, "what the app set is kept"

        cassette = Cassette("openai/test_chat_completion_with_content.yaml")
        openai_client(cassette).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        assert "stream_options" not in cassette.requests[0].json, "only streaming requests"

        cassette = Cassette("openai/test_chat_completion_with_context_manager_streaming.yaml")
        with openai_client(cassette).chat.completions.stream(model="gpt-4o-mini", messages=QUESTION) as stream:
            stream.until_done()
        assert cassette.requests[0].json["stream_options"] == {"include_usage": True}, "the manager's request too"
    finally:
        agent.uninstrument()
    agent.instrument("openai")  # without the option: requests go as the app wrote them
    try:
        cassette = Cassette("openai/test_chat_completion_streaming_not_complete.yaml")
        list(openai_client(cassette).chat.completions.create(model="gpt-4", messages=QUESTION, stream=True))
        assert "stream_options" not in cassette.requests[0].json
    finally:
        agent.uninstrument()


def test_multiple_choices_stream(recorded, ch) -> None:
    stream = _client("test_chat_completion_multiple_choices_streaming").chat.completions.create(
        model="gpt-4o-mini", messages=WEATHER, n=2, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    row = one_row(ch, recorded)
    assert len(row["FinishReasons"]) == 2 and row["OutputTokens"] is not None
    texts = [
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        for i in (0, 1)
    ]
    messages = [[p["content"] for p in m["parts"] if p["type"] == "text"] for m in json.loads(row["OutputMessages"])]
    assert [m[0] if m else "" for m in messages] == texts


def test_streamed_tool_calls_are_assembled(recorded, ch) -> None:
    tools = [{"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}]
    stream = _client("test_chat_completion_multiple_tools_streaming_with_content").chat.completions.create(
        model="gpt-4o-mini",
        messages=WEATHER,
        stream=True,
        stream_options={"include_usage": True},
        tool_choice="auto",
        tools=tools,
    )
    list(stream)
    row = one_row(ch, recorded)
    calls = [p for p in output_parts(row) if p["type"] == "tool_call"]
    assert [c["name"] for c in calls] == ["get_current_weather", "get_current_weather"]
    assert {c["arguments"]["location"].split(",")[0] for c in calls} == {"Seattle", "San Francisco"}
    assert row["FinishReasons"] == ["tool_calls"] and (row["InputTokens"], row["OutputTokens"]) == (75, 51)
    assert row["CostUSD"] == pytest.approx(cost("gpt-4o-mini", 75, 51, 0))


# --- how a stream ends ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "drop", "double_close"])
def test_a_stream_left_early_ends_once_with_what_was_seen(recorded, ch, how: str) -> None:
    stream = _client("test_chat_completion_streaming").chat.completions.create(
        model="gpt-4", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if _text(seen) == "This is":
            break
    if how == "drop":
        del stream
        gc.collect()
    else:
        stream.close()
        if how == "double_close":
            stream.close()
    row = one_row(ch, recorded)
    span = recorded["collector"].spans[0]
    assert span.attributes["llmpulse.stream.state"] == "abandoned" and span.status_code == "Unset"
    assert row["ResponseText"] == "This is" and row["FinishReasons"] == []
    assert row["OutputTokens"] is None and row["CostUSD"] is None, "the usage chunk never arrived"


def test_a_stream_as_a_context_manager_exited_twice_ends_once(recorded, ch) -> None:
    stream = _client("test_chat_completion_with_context_manager_streaming").chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    with stream as entered:
        text = _text(list(entered))
    stream.__exit__(None, None, None)
    row = one_row(ch, recorded)
    assert row["ResponseText"] == text and row["OutputTokens"] == 12
    assert recorded["collector"].spans[0].attributes["llmpulse.stream.state"] == "completed"


def test_an_exception_raised_while_reading_fails_the_span_and_passes_through(recorded, ch) -> None:
    with pytest.raises(ValueError, match="User raised exception"):
        with _client("test_chat_completion_streaming").chat.completions.create(
            model="gpt-4", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        ) as stream:
            for _ in stream:
                raise ValueError("User raised exception")
    row = one_row(ch, recorded)
    assert row["StatusCode"] == "Error" and row["ErrorType"] == "ValueError"
    assert recorded["collector"].spans[0].attributes["llmpulse.stream.state"] == "failed"


def test_async_stream_interrupted_mid_iteration(recorded, ch) -> None:
    async def read_two() -> str:
        stream = await _client("test_async_chat_completion_streaming", async_=True).chat.completions.create(
            model="gpt-4", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        seen = []
        async for chunk in stream:
            seen.append(chunk)
            if len(seen) == 3:
                break
        await stream.close()
        await stream.close()
        return _text(seen)

    text = asyncio.run(read_two())
    row = one_row(ch, recorded)
    assert (
        row["ResponseText"] == text
        and recorded["collector"].spans[0].attributes["llmpulse.stream.state"] == "abandoned"
    )


# --- stream managers: one call, one span ----------------------------------------------------------------------


def test_the_chat_stream_manager_is_one_span(recorded, ch) -> None:
    client = _client("test_chat_completion_with_context_manager_streaming")
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}
    ) as stream:
        assert isinstance(stream, openai.lib.streaming.chat.ChatCompletionStream), "the app gets the SDK's stream"
        final = stream.get_final_completion()
    row = one_row(ch, recorded)
    assert row["ResponseText"] == final.choices[0].message.content and (row["InputTokens"], row["OutputTokens"]) == (
        12,
        12,
    )
    assert row["SpanName"] == "chat gpt-4o-mini" and row["Stream"] is True
    assert recorded["collector"].spans[0].attributes["llmpulse.stream.state"] == "completed"


@pytest.mark.parametrize("how", ["break", "exception", "double_exit"])
def test_the_chat_stream_manager_left_early(recorded, ch, how: str) -> None:
    manager = _client("test_chat_completion_with_context_manager_streaming").chat.completions.stream(
        model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}
    )
    try:
        with manager as stream:
            for event in stream:
                if event.type == "content.delta" and event.delta:
                    if how == "exception":
                        raise KeyError("stop here")
                    break
    except KeyError:
        pass
    if how == "double_exit":
        manager.__exit__(None, None, None)
    row = one_row(ch, recorded)
    state = recorded["collector"].spans[0].attributes["llmpulse.stream.state"]
    if how == "exception":
        assert state == "failed" and row["ErrorType"] == "KeyError"
    else:
        assert state == "abandoned" and row["StatusCode"] == "Unset"
    assert row["ResponseText"] == "This" and row["OutputTokens"] is None


def test_async_chat_stream_manager(recorded, ch) -> None:
    async def run() -> str:
        client = _client("test_chat_completion_with_context_manager_streaming", async_=True)
        async with client.chat.completions.stream(
            model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}
        ) as stream:
            return (await stream.get_final_completion()).choices[0].message.content

    text = asyncio.run(run())
    row = one_row(ch, recorded)
    assert row["ResponseText"] == text and row["OutputTokens"] == 12


# --- raw streaming responses -----------------------------------------------------------------------------------


def test_a_raw_streaming_response_is_observed_through_parse(recorded, ch) -> None:
    client = _client("test_chat_completion_with_raw_response_streaming")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    text = _text(list(raw.parse()))
    row = one_row(ch, recorded)
    assert row["ResponseText"] == text and (row["InputTokens"], row["OutputTokens"]) == (12, 12)
    assert recorded["collector"].spans[0].attributes["llmpulse.stream.state"] == "completed"


# --- Responses streams -----------------------------------------------------------------------------------------


def test_responses_stream_sync_async_and_manager(recorded, ch) -> None:
    client = _client("test_responses_create_streaming[content_mode0]")
    events = list(
        client.responses.create(
            model="gpt-4o-mini",
            input="Say this is a test",
            instructions="You are a helpful assistant.",
            service_tier="default",
            stream=True,
        )
    )
    assert events[-1].type == "response.completed"

    async def run() -> list[str]:
        async_client = _client("test_async_responses_streaming", async_=True)
        texts = []
        stream = await async_client.responses.create(model="gpt-4o-mini", input="Say hello", stream=True)
        texts.append("".join([e.delta async for e in stream if e.type == "response.output_text.delta"]))
        async with async_client.responses.stream(model="gpt-4o-mini", input="Say hello") as manager:
            texts.append((await manager.get_final_response()).output_text)
        return texts

    async_texts = asyncio.run(run())
    found = rows(ch, recorded)
    assert len(found) == 3 and [r["ResponseText"] for r in found[1:]] == async_texts
    assert all(r["OutputTokens"] is not None and r["FinishReasons"] == ["completed"] for r in found)
    assert found[0]["ResponseText"] == "This is a test."


def test_responses_stream_manager_left_early_keeps_the_text_so_far(recorded, ch) -> None:
    client = _client("test_responses_create_streaming_iteration[content_mode0]")
    with client.responses.stream(
        model="gpt-4o-mini", input="Say hi.", instructions="You are a helpful assistant."
    ) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                first = event.delta
                break
    row = one_row(ch, recorded)
    assert row["ResponseText"] == first and row["OutputTokens"] is None and row["CostUSD"] is None
    assert agent.stats().streams_without_usage == 1


def test_responses_stream_cached_tokens(recorded, ch) -> None:
    """Rewritten usage on the terminal ``response.completed`` event (the recording's cached_tokens is 0)."""
    usage = {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1206,
    }
    cassette = Cassette(
        "openai/test_responses_create_streaming_aggregates_cache_tokens[content_mode0].yaml",
        rewrite=replace_usage(usage),
    )
    list(
        openai_client(cassette).responses.create(
            model="gpt-4o-mini", input="Say this is a test", instructions="You are a helpful assistant.", stream=True
        )
    )
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["CacheReadInputTokens"], row["OutputTokens"]) == (1200, 1024, 6)
    assert row["CostUSD"] == pytest.approx((176 * 0.15 + 1024 * 0.075 + 6 * 0.6) / 1e6)
