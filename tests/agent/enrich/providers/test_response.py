"""Completed responses of every provider API to a ParsedResponse: recorded bodies, odd input, the dict fast path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedResponse,
    parse_response,
)

from tests.agent.enrich.providers.recorded import (
    _Exploding,
    check_anthropic,
    check_anthropic_tool_use,
    check_openai_chat,
    check_openai_logprobs,
    check_openai_tool_call,
    check_responses,
    check_responses_stream,
)
from tests.agent.provider_fakes import (
    ANTHROPIC_TEXT,
    load_json_fixture,
    sse_events,
)


@pytest.mark.parametrize(
    ("fixture", "check"),
    [
        ("openai_chat_completion.json", check_openai_chat),
        ("openai_chat_completion_logprobs.json", check_openai_logprobs),
        ("openai_chat_tool_call.json", check_openai_tool_call),
        ("openai_responses.json", check_responses),
        ("anthropic_message.json", check_anthropic),
        ("anthropic_tool_use.json", check_anthropic_tool_use),
    ],
)
def test_parse_response_dict_bodies(fixture: str, check: Any) -> None:
    check(parse_response(load_json_fixture(fixture)))


def test_parse_response_legacy_completion() -> None:
    res = parse_response(load_json_fixture("openai_completion.json"))
    assert res is not None
    assert (res.provider, res.operation, res.finish_reasons) == ("openai", "text_completion", ["stop"])
    assert res.output_text is not None and res.output_text.startswith("\n\nObservability is")
    assert (res.input_tokens, res.output_tokens) == (6, 18)
    body = load_json_fixture("openai_completion.json")
    body["choices"][0]["logprobs"] = {"tokens": ["a", "b"], "token_logprobs": [-0.5, -1.0]}
    assert parse_response(body).token_logprobs == [-0.5, -1.0]  # type: ignore[union-attr]


def test_parse_response_responses_api_variants() -> None:
    body = load_json_fixture("openai_responses.json")
    body["status"] = "incomplete"
    body["incomplete_details"] = {"reason": "max_output_tokens"}
    res = parse_response(body)
    assert res is not None
    assert res.finish_reasons == ["max_output_tokens"]
    assert res.output_messages[0]["finish_reason"] == "length"  # type: ignore[index]

    tool = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need weather."}]},
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"location":"Paris"}',
            },
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        ],
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 64},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 8},
        },
    }
    res = parse_response(tool)
    assert res is not None
    assert res.output_text is None
    assert res.cache_creation_input_tokens == 64
    assert res.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "Need weather."},
                {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"location": "Paris"}},
                {"type": "server_tool_call", "id": "ws_1", "name": "web_search"},
            ],
            "finish_reason": "tool_call",
        }
    ]
    failed = parse_response({"object": "response", "status": "failed", "output": [], "model": "gpt-4.1"})
    assert failed is not None and failed.output_messages[0]["finish_reason"] == "error"  # type: ignore[index]


def test_parse_response_chat_multiple_choices_and_refusal() -> None:
    body = {
        "object": "chat.completion",
        "id": "c1",
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "length"},
            {
                "index": 1,
                "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                "finish_reason": "content_filter",
            },
        ],
    }
    res = parse_response(body)
    assert res is not None
    assert res.output_text == "A"
    assert res.finish_reasons == ["length", "content_filter"]
    assert [m["finish_reason"] for m in res.output_messages] == ["length", "content_filter"]  # type: ignore[union-attr]
    assert res.output_messages[1]["parts"] == [{"type": "refusal", "content": "I can't."}]  # type: ignore[index]
    assert res.input_tokens is None


def test_parse_response_anthropic_thinking_and_usage_details() -> None:
    body = load_json_fixture("anthropic_message.json")
    body["content"].insert(0, {"type": "thinking", "thinking": "Check policy.", "signature": "x"})
    body["content"].append({"type": "redacted_thinking", "data": "abc"})
    body["usage"]["output_tokens_details"] = {"thinking_tokens": 12}
    res = parse_response(body)
    assert res is not None
    assert res.reasoning_output_tokens == 12
    assert res.output_text == ANTHROPIC_TEXT
    assert res.output_messages[0]["parts"][0] == {"type": "reasoning", "content": "Check policy."}  # type: ignore[index]
    assert len(res.output_messages[0]["parts"]) == 2  # type: ignore[index]


def test_parse_response_embeddings() -> None:
    res = parse_response(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
    )
    assert res is not None
    assert (res.operation, res.response_model, res.input_tokens, res.output_tokens) == (
        "embeddings",
        "text-embedding-3-small",
        5,
        None,
    )


def test_parse_response_plain_string() -> None:
    assert parse_response("hello") == ParsedResponse(output_text="hello")
    assert parse_response("") == ParsedResponse(output_text="")


@pytest.mark.parametrize(
    "obj",
    [
        None,
        42,
        3.5,
        True,
        b"bytes",
        [],
        (),
        {},
        object(),
        {"choices": None},
        {"choices": []},
        {"choices": [None, 3]},
        {"object": "chat.completion"},
        {"object": "chat.completion", "choices": [{"message": None}], "usage": {"prompt_tokens": "x"}},
        {"object": "response", "output": None, "usage": 5},
        {"type": "message"},
        {"type": "message", "content": "not a list", "usage": {"input_tokens": None, "cache_read_input_tokens": 5}},
        SimpleNamespace(object="chat.completion", choices=[SimpleNamespace()]),
        SimpleNamespace(type="message", content=[SimpleNamespace(type="text")], usage=SimpleNamespace()),
        _Exploding(),
    ],
)
def test_parse_response_odd_input_never_raises(obj: Any) -> None:
    res = parse_response(obj)
    assert res is None or isinstance(res, ParsedResponse)


def test_parse_response_unknown_shapes_are_none() -> None:
    assert parse_response(None) is None
    assert parse_response(42) is None
    assert parse_response({"foo": "bar"}) is None
    assert parse_response(object()) is None
    partial = parse_response({"object": "chat.completion", "model": "gpt-4o"})
    assert partial is not None and partial.response_model == "gpt-4o" and partial.output_text is None


def test_parse_response_terminal_stream_events() -> None:
    events = sse_events("openai_responses_stream.sse")
    check_responses_stream(parse_response(events[-1]))


def _chat_body(message: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, **choice}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}},
    }


@pytest.mark.parametrize(
    "body",
    [
        _chat_body({"role": "assistant", "content": "Paris."}, finish_reason="stop"),
        _chat_body({"role": "", "content": "", "refusal": "", "tool_calls": []}, finish_reason=""),
        _chat_body({"role": None, "content": "x", "refusal": None, "function_call": None}, finish_reason=None),
        _chat_body({"role": "assistant", "content": "x"}, finish_reason="STOP", logprobs=None),
        _chat_body({"role": "assistant", "content": "x"}, finish_reason="brand_new"),
        _chat_body({"role": "assistant", "content": "x", "refusal": "no"}, finish_reason="stop"),
        _chat_body({"role": "assistant", "content": "x"}, finish_reason=5),
        _chat_body({"role": "assistant", "content": "x"}, logprobs={"content": [{"logprob": -0.5}]}),
        _chat_body({"role": 3, "content": [{"type": "text", "text": "a"}]}),
        {**_chat_body({"content": "x"}), "usage": {"input_tokens": 3, "output_tokens": 4}, "model": 7},
        {**_chat_body({"content": "x"}), "usage": None},
        {"object": "chat.completion", "choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}]},
    ],
)
def test_parse_response_chat_dict_fast_path_matches_general_path(body: dict[str, Any]) -> None:
    from types import MappingProxyType

    assert repr(parse_response(body)) == repr(parse_response(MappingProxyType(body)))


def test_pydantic_models_read_like_getattr() -> None:
    """SDK objects are pydantic models; missing keys are resolved without pydantic's raise-and-catch."""
    pydantic = pytest.importorskip("pydantic")

    class Loose(pydantic.BaseModel):  # undeclared fields land in __pydantic_extra__
        model_config = pydantic.ConfigDict(extra="allow")
        id: str | None = None

    class WithProperty(Loose):
        @property
        def object(self) -> str:
            return "chat.completion"

    class WithHook(Loose):
        def __getattr__(self, item: str) -> Any:
            return "chat.completion" if item == "object" else super().__getattr__(item)

    choices = [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]
    extra = parse_response(Loose(id="c1", object="chat.completion", model="m", choices=choices))
    assert extra is not None
    assert (extra.response_id, extra.response_model, extra.output_text) == ("c1", "m", "hi")
    assert parse_response(Loose(id="c1")) is None  # nothing declared, nothing extra: not recognised
    prop = parse_response(WithProperty(choices=choices))
    assert prop is not None and prop.output_text == "hi"
    hooked = parse_response(WithHook(choices=choices))
    assert hooked is not None and hooked.output_text == "hi"
