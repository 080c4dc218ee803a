"""Streams of every provider API rebuilt into a ParsedResponse: recorded events, cut-short streams, edge cases."""

from __future__ import annotations

from typing import Any

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedResponse,
    map_finish_reason,
    parse_stream,
)

from tests.agent.enrich.providers.recorded import (
    _Exploding,
    check_anthropic_stream,
    check_anthropic_stream_tool_use,
    check_openai_chat_stream,
    check_openai_chat_stream_tool_call,
    check_responses_stream,
)
from tests.agent.provider_fakes import (
    ANTHROPIC_STREAM_TEXT,
    FIXTURES_DIR,
    OPENAI_STREAM_TEXT,
    RESPONSES_STREAM_TEXT,
    load_fixture,
    load_json_fixture,
    sse_events,
)


@pytest.mark.parametrize(
    ("fixture", "check"),
    [
        ("openai_chat_stream.sse", check_openai_chat_stream),
        ("openai_chat_stream_tool_call.sse", check_openai_chat_stream_tool_call),
        ("openai_responses_stream.sse", check_responses_stream),
        ("anthropic_stream.sse", check_anthropic_stream),
        ("anthropic_stream_tool_use.sse", check_anthropic_stream_tool_use),
    ],
)
def test_parse_stream_dict_events(fixture: str, check: Any) -> None:
    check(parse_stream(sse_events(fixture)))


# --------------------------------------------------------------------------------------------------------------------
# parse_stream edge cases
# --------------------------------------------------------------------------------------------------------------------


def test_parse_stream_plain_strings() -> None:
    res = parse_stream(["Hel", "lo", None, 5, object(), " world"])
    assert res == ParsedResponse(output_text="Hello world")
    assert parse_stream("whole") == ParsedResponse(output_text="whole")


@pytest.mark.parametrize("chunks", [[], [None, 1, object(), b"x"], None, 5, object(), [{"type": "ping"}]])
def test_parse_stream_nothing_recognised(chunks: Any) -> None:
    assert parse_stream(chunks) is None


def test_parse_stream_ignores_unknown_and_broken_items() -> None:
    events: list[Any] = sse_events("anthropic_stream.sse")
    events[3:3] = [object(), {"type": "ping"}, _Exploding(), {"type": "content_block_delta", "delta": None}, "stray"]
    check_anthropic_stream(parse_stream(events))


def test_parse_stream_chat_without_usage_chunk() -> None:
    events = sse_events("openai_chat_stream.sse")[:-1]  # no stream_options include_usage
    res = parse_stream(events)
    assert res is not None
    assert res.output_text == OPENAI_STREAM_TEXT
    assert (res.input_tokens, res.output_tokens) == (None, None)


def test_parse_stream_chat_multiple_choices_and_logprobs() -> None:
    def chunk(index: int, delta: dict[str, Any], finish: str | None = None, lp: float | None = None) -> dict[str, Any]:
        logprobs = (
            {"content": [{"token": "x", "logprob": lp, "bytes": [], "top_logprobs": []}]} if lp is not None else None
        )
        return {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}],
        }

    res = parse_stream(
        [
            chunk(0, {"role": "assistant", "content": "A"}, lp=-0.1),
            chunk(1, {"role": "assistant", "content": "B"}),
            chunk(0, {"content": "a"}, lp=-0.2),
            chunk(1, {"content": "b"}),
            chunk(0, {}, "stop"),
            chunk(1, {}, "length"),
        ]
    )
    assert res is not None
    assert res.output_text == "Aa"
    assert res.token_logprobs == [-0.1, -0.2]
    assert res.finish_reasons == ["stop", "length"]
    assert [m["parts"][0]["content"] for m in res.output_messages] == ["Aa", "Bb"]  # type: ignore[union-attr]


def test_parse_stream_responses_interrupted() -> None:
    events = [e for e in sse_events("openai_responses_stream.sse") if e["type"] != "response.completed"]
    res = parse_stream(events)
    assert res is not None
    assert (res.response_id, res.response_model) == (
        "resp_68a1b3f2e5c48190a4d2f7b9c1e3a5d70b2c4e6f8a1b3c5d",
        "gpt-4.1-2025-04-14",
    )
    assert res.output_text == RESPONSES_STREAM_TEXT
    assert res.finish_reasons == []
    assert res.input_tokens is None
    only_deltas = [e for e in events if e["type"] in ("response.created", "response.output_text.delta")]
    res = parse_stream(only_deltas)
    assert res is not None and res.output_text == RESPONSES_STREAM_TEXT
    assert res.output_messages[0]["finish_reason"] == "error"  # type: ignore[index]


def test_parse_stream_anthropic_interrupted_uses_message_start_usage() -> None:
    events = [e for e in sse_events("anthropic_stream.sse") if e["type"] not in ("message_delta", "message_stop")]
    res = parse_stream(events)
    assert res is not None
    assert res.output_text == ANTHROPIC_STREAM_TEXT
    assert (res.input_tokens, res.output_tokens, res.finish_reasons) == (18 + 1024, 2, [])


def test_parse_stream_anthropic_text_events_not_double_counted() -> None:
    raw = sse_events("anthropic_stream.sse")
    mixed: list[Any] = []
    for event in raw:
        mixed.append(event)
        if event["type"] == "content_block_delta":
            mixed.append({"type": "text", "text": event["delta"]["text"], "snapshot": "..."})
    check_anthropic_stream(parse_stream(mixed))
    # Only the SDK's higher-level text events (no raw deltas): still the full text.
    high_level = [e for e in raw if e["type"] != "content_block_delta"]
    high_level += [{"type": "text", "text": e["delta"]["text"]} for e in raw if e["type"] == "content_block_delta"]
    res = parse_stream(high_level)
    assert res is not None and res.output_text == ANTHROPIC_STREAM_TEXT


def test_parse_stream_first_format_wins() -> None:
    res = parse_stream(sse_events("openai_chat_stream.sse") + sse_events("anthropic_stream.sse"))
    check_openai_chat_stream(res)


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("stop", "stop"),
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
        ("max_tokens", "length"),
        ("tool_calls", "tool_call"),
        ("tool_use", "tool_call"),
        ("function_call", "tool_call"),
        ("content_filter", "content_filter"),
        ("refusal", "content_filter"),
        ("completed", "stop"),
        ("failed", "error"),
        (None, "error"),
        ("", "error"),
        ("Something_New", "something_new"),
    ],
)
def test_map_finish_reason(raw: str | None, mapped: str) -> None:
    assert map_finish_reason(raw) == mapped


def test_fixtures_are_well_formed() -> None:
    names = sorted(p.name for p in FIXTURES_DIR.iterdir())
    assert len(names) >= 12
    for name in names:
        if name.endswith(".json"):
            assert isinstance(load_json_fixture(name), dict)
        else:
            text = load_fixture(name)
            assert text.endswith("\n\n"), name
            assert sse_events(name), name
            if name.startswith("openai_chat"):
                assert text.rstrip().endswith("data: [DONE]")
            if name.startswith("anthropic") or name.startswith("openai_responses"):
                assert text.startswith("event: "), name


@pytest.mark.parametrize("fixture", ["openai_chat_stream.sse", "openai_chat_stream_tool_call.sse"])
def test_parse_stream_dict_chunks_match_general_path(fixture: str) -> None:
    from types import MappingProxyType

    events = sse_events(fixture)
    assert repr(parse_stream(events)) == repr(parse_stream([MappingProxyType(e) for e in events]))
