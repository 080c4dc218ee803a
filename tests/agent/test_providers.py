"""Tests of request/response/stream parsing, on dicts, odd input and real SDK clients over recorded bodies."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedRequest,
    ParsedResponse,
    map_finish_reason,
    parse_request,
    parse_response,
    parse_stream,
)

from tests.agent.provider_fakes import (
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_TEXT,
    FIXTURES_DIR,
    OPENAI_CHAT_TEXT,
    OPENAI_STREAM_TEXT,
    RESPONSES_STREAM_TEXT,
    RESPONSES_TEXT,
    FixtureServer,
    anthropic_client,
    load_fixture,
    load_json_fixture,
    openai_client,
    sse_events,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

# The recorded Anthropic bodies come from claude-sonnet-4-5, which anthropic 2.x flags as deprecated on request.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

# Recorded bodies and the values a correct parser must read from them.
WEATHER_ARGS = {"location": "Paris, France", "unit": "celsius"}

CHAT_KWARGS: dict[str, Any] = {
    "model": "o4-mini",
    "messages": [
        {"role": "developer", "content": "Answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "max_completion_tokens": 512,
    "reasoning_effort": "low",
    "seed": 7,
    "service_tier": "default",
}
ANTHROPIC_KWARGS: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Answer from the policy.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Can I get a refund?"}],
    "stop_sequences": ["\n\nHuman:"],
    "service_tier": "auto",
}


def assert_request_agrees(parsed: ParsedRequest, sent: dict[str, Any]) -> None:
    """What parse_request read from the kwargs is what the SDK actually put on the wire."""
    assert parsed.model == sent["model"]
    for attr, keys in {
        "temperature": ("temperature",),
        "top_p": ("top_p",),
        "top_k": ("top_k",),
        "seed": ("seed",),
        "choice_count": ("n",),
        "max_tokens": ("max_tokens", "max_completion_tokens", "max_output_tokens"),
        "stop_sequences": ("stop_sequences",),
    }.items():
        wire = next((sent[k] for k in keys if k in sent), None)
        assert getattr(parsed, attr) == wire, attr
    assert parsed.stream == sent.get("stream")
    if "messages" in sent:
        assert parsed.input_messages is not None
        assert len(parsed.input_messages) == len(sent["messages"])
        for converted, original in zip(parsed.input_messages, sent["messages"], strict=True):
            if isinstance(original["content"], str):
                assert converted["parts"] == [{"type": "text", "content": original["content"]}]


# --------------------------------------------------------------------------------------------------------------------
# parse_request
# --------------------------------------------------------------------------------------------------------------------


def test_parse_request_openai_chat_full() -> None:
    kwargs = {
        "model": "gpt-4o-2024-08-06",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": "Use metric units."},
            {
                "role": "user",
                "name": "alice",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris, France"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 256,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "stop": "\n\n",
        "seed": 42,
        "n": 2,
        "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "user": "user-123",
    }
    req = parse_request(kwargs)
    assert req.model == "gpt-4o-2024-08-06"
    assert req.provider == "openai"
    assert req.operation == "chat"
    assert (req.temperature, req.top_p, req.max_tokens) == (0.2, 0.9, 256)
    assert (req.frequency_penalty, req.presence_penalty) == (0.5, -0.5)
    assert req.stop_sequences == ["\n\n"]
    assert (req.seed, req.choice_count, req.stream) == (42, 2, True)
    assert req.output_type == "json"
    assert req.system_instructions is None  # OpenAI chat system messages stay in the input messages
    assert req.extra_params == {"parallel_tool_calls": False, "tool_choice": "function"}
    msgs = req.input_messages
    assert msgs is not None
    assert msgs[0] == {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]}
    assert msgs[1]["role"] == "system"  # developer is the o-series name for system
    assert msgs[2]["name"] == "alice"
    assert msgs[2]["parts"] == [
        {"type": "text", "content": "What is in this image?"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
        {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="},
    ]
    assert msgs[3] == {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"location": "Paris, France"}}
        ],
    }
    assert msgs[4] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "18C and sunny"}],
    }
    json.dumps(msgs)  # must be serialisable as the gen_ai.input.messages attribute


def test_parse_request_anthropic() -> None:
    kwargs = dict(ANTHROPIC_KWARGS, temperature=0.3, top_k=40)  # older SDKs/other clients still send these
    kwargs["messages"] = [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "text", "text": "What's the weather where this photo was taken?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Looks like Paris.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": WEATHER_ARGS},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]}
            ],
        },
    ]
    kwargs["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    kwargs["output_config"] = {"effort": "high", "format": {"type": "json_schema", "schema": {}}}
    req = parse_request(kwargs)
    assert req.provider == "anthropic"
    assert req.operation == "chat"
    assert (req.max_tokens, req.temperature, req.top_k) == (1024, 0.3, 40.0)
    assert req.stop_sequences == ["\n\nHuman:"]
    assert req.output_type == "json"
    assert req.system_instructions == [{"type": "text", "content": "Answer from the policy."}]
    assert req.extra_params == {
        "service_tier": "auto",
        "thinking_type": "enabled",
        "thinking_budget_tokens": 2048,
        "effort": "high",
    }
    msgs = req.input_messages
    assert msgs is not None
    assert msgs[0]["parts"][0] == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/jpeg",
        "content": "/9j/4AAQ",
    }
    assert msgs[1]["parts"] == [
        {"type": "reasoning", "content": "Looks like Paris."},
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": WEATHER_ARGS},
    ]
    assert msgs[2]["parts"] == [{"type": "tool_call_response", "id": "toolu_1", "response": "18C"}]


def test_parse_request_anthropic_system_string() -> None:
    req = parse_request({"model": "claude-haiku-4-5", "system": "Be brief.", "messages": [], "max_tokens": 10})
    assert req.system_instructions == [{"type": "text", "content": "Be brief."}]
    assert req.input_messages == []


def test_parse_request_responses_api() -> None:
    kwargs = {
        "model": "gpt-5-mini",
        "instructions": "You are a terse poet.",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_image", "file_id": "file-1"}],
            },
            {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": '{"location":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_9", "output": '{"temp": 18}'},
            {"type": "item_reference", "id": "msg_1"},
        ],
        "max_output_tokens": 300,
        "reasoning": {"effort": "minimal", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {}}, "verbosity": "low"},
        "store": False,
        "conversation": {"id": "conv_123"},
    }
    req = parse_request(kwargs)
    assert (req.operation, req.provider, req.max_tokens, req.output_type) == ("chat", "openai", 300, "json")
    assert req.system_instructions == [{"type": "text", "content": "You are a terse poet."}]
    assert req.extra_params == {
        "store": False,
        "reasoning_effort": "minimal",
        "reasoning_summary": "auto",
        "verbosity": "low",
        "conversation_id": "conv_123",
    }
    assert req.input_messages == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "Weather?"},
                {"type": "file", "modality": "image", "file_id": "file-1"},
            ],
        },
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_9", "name": "get_weather", "arguments": {"location": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_9", "response": '{"temp": 18}'}]},
    ]
    assert parse_request({"model": "gpt-4.1", "input": "Say hi"}).input_messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hi"}]}
    ]


def test_parse_request_completion_and_embeddings() -> None:
    req = parse_request(
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7, "stop": ["\n"]}
    )
    assert req.operation == "text_completion"
    assert req.input_messages == [{"role": "user", "parts": [{"type": "text", "content": "Say this is a test"}]}]
    assert (req.max_tokens, req.stop_sequences) == (7, ["\n"])
    emb = parse_request({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256})
    assert (emb.operation, emb.provider, emb.input_messages) == ("embeddings", "openai", None)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("o1", "openai"),
        ("o3-mini-2025-01-31", "openai"),
        ("text-embedding-3-large", "openai"),
        ("openai/gpt-4o", "openai"),
        ("claude-3-5-sonnet-20241022", "anthropic"),
        ("Anthropic/claude-x", "anthropic"),
        ("gpt-oss-120b", "openai"),  # the one rule (issue 12): OpenAI's open-weights models are OpenAI's
        ("meta-llama/Llama-3.1-8B-Instruct", None),
        ("mistral-large", None),
        ("omega", None),
        ("", None),
        (None, None),
    ],
)
def test_provider_guess_only_when_obvious(model: str | None, provider: str | None) -> None:
    assert parse_request({"model": model, "messages": []}).provider == provider


@pytest.mark.parametrize("kwargs", [None, 5, "model=gpt-4o", ["model"], object(), b"x"])
def test_parse_request_non_mapping_is_empty(kwargs: Any) -> None:
    assert parse_request(kwargs) == ParsedRequest()


def test_parse_request_odd_values_never_raise() -> None:
    req = parse_request(
        {
            "model": 123,
            "messages": "just a string",
            "temperature": "hot",
            "max_tokens": True,
            "top_p": None,
            "stop": 5,
            "seed": 1.5,
            "n": "2",
            "stream": "yes",
            "response_format": 3,
            "reasoning": "high",
            "tool_choice": {"type": None},
            "system": [None, 3, {"type": "text"}],
        }
    )
    assert req.model is None
    assert req.operation == "chat"
    assert req.input_messages == [{"role": "user", "parts": [{"type": "text", "content": "just a string"}]}]
    assert (req.temperature, req.max_tokens, req.stop_sequences, req.seed, req.choice_count, req.stream) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )
    assert req.system_instructions == [{"type": "text", "content": ""}]
    weird = parse_request({"messages": [None, 1, {"role": None, "content": [None, {"type": "mystery", "x": 1}]}]})
    assert weird.input_messages is not None
    assert {"type": "mystery"} in weird.input_messages[-1]["parts"]


def test_parse_request_ignores_sdk_sentinels() -> None:
    req = parse_request(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": openai.NOT_GIVEN,
            "stop": openai.omit,
            "prompt": openai.omit,
            "service_tier": openai.NOT_GIVEN,
        }
    )
    assert (req.operation, req.temperature, req.stop_sequences, req.extra_params) == ("chat", None, None, {})


# --------------------------------------------------------------------------------------------------------------------
# parse_response on recorded bodies (dicts)
# --------------------------------------------------------------------------------------------------------------------


def check_openai_chat(res: ParsedResponse | None) -> None:
    assert res is not None
    assert (res.provider, res.operation) == ("openai", "chat")
    assert res.response_model == "o4-mini-2025-04-16"
    assert res.response_id == "chatcmpl-C3kF9wQzR7tLmP2xVbN8aYdE4sJhU"
    assert res.finish_reasons == ["stop"]
    assert (res.input_tokens, res.output_tokens) == (1843, 212)
    assert (res.cache_read_input_tokens, res.reasoning_output_tokens) == (1536, 192)
    assert res.cache_creation_input_tokens is None
    assert res.output_text == OPENAI_CHAT_TEXT
    assert res.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": OPENAI_CHAT_TEXT}], "finish_reason": "stop"}
    ]
    assert res.token_logprobs is None


def check_openai_logprobs(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "gpt-4o-mini-2024-07-18"
    assert res.output_text == "Paris is the capital of France."
    assert res.token_logprobs == pytest.approx(
        [-0.0000072, -0.31326, -0.0000018, -0.0000034, 0.0, -0.0000012, -0.0019317]
    )
    assert (res.input_tokens, res.output_tokens, res.cache_read_input_tokens) == (24, 7, 0)


def check_openai_tool_call(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "gpt-4o-2024-08-06"
    assert res.finish_reasons == ["tool_calls"]
    assert res.output_text is None
    assert res.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_Q8vTzL3mXr5KpW2nYb7HdE0s",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                }
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert (res.input_tokens, res.output_tokens) == (82, 20)


def check_openai_chat_stream(res: ParsedResponse | None) -> None:
    assert res is not None
    assert (res.provider, res.operation) == ("openai", "chat")
    assert res.response_model == "gpt-4o-mini-2024-07-18"
    assert res.response_id == "chatcmpl-C3kIcU5oXgF9qRpAy3MnSzVw7EtHd"
    assert res.finish_reasons == ["stop"]
    assert res.output_text == OPENAI_STREAM_TEXT
    assert (res.input_tokens, res.output_tokens, res.cache_read_input_tokens, res.reasoning_output_tokens) == (
        19,
        19,
        0,
        0,
    )
    assert res.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": OPENAI_STREAM_TEXT}], "finish_reason": "stop"}
    ]


def check_openai_chat_stream_tool_call(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "gpt-4.1-mini-2025-04-14"
    assert res.finish_reasons == ["tool_calls"]
    assert res.output_text is None
    assert res.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_Hn4wXk9Lr2PqZ7tVb3YmCs1e",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                }
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert (res.input_tokens, res.output_tokens) == (81, 18)


def check_responses(res: ParsedResponse | None) -> None:
    assert res is not None
    assert (res.provider, res.operation) == ("openai", "chat")
    assert res.response_model == "gpt-5-mini-2025-08-07"
    assert res.response_id == "resp_0a7f1c2e9b3d4f5a0068a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5"
    assert res.finish_reasons == ["completed"]
    assert (res.input_tokens, res.output_tokens) == (1310, 277)
    assert (res.cache_read_input_tokens, res.reasoning_output_tokens) == (1152, 256)
    assert res.output_text == RESPONSES_TEXT
    assert res.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": RESPONSES_TEXT}], "finish_reason": "stop"}
    ]


def check_responses_stream(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "gpt-4.1-2025-04-14"
    assert res.response_id == "resp_68a1b3f2e5c48190a4d2f7b9c1e3a5d70b2c4e6f8a1b3c5d"
    assert res.finish_reasons == ["completed"]
    assert res.output_text == RESPONSES_STREAM_TEXT
    assert (res.input_tokens, res.output_tokens, res.cache_read_input_tokens) == (14, 12, 0)


def check_anthropic(res: ParsedResponse | None) -> None:
    assert res is not None
    assert (res.provider, res.operation) == ("anthropic", "chat")
    assert res.response_model == "claude-sonnet-4-5-20250929"
    assert res.response_id == "msg_01Hq8ZtV3xLmN5pRk2WcYd7B"
    assert res.finish_reasons == ["end_turn"]
    assert res.input_tokens == 21 + 2048 + 248  # semconv: input includes cache reads and writes
    assert (res.cache_read_input_tokens, res.cache_creation_input_tokens, res.output_tokens) == (2048, 248, 31)
    assert res.output_text == ANTHROPIC_TEXT
    assert res.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANTHROPIC_TEXT}], "finish_reason": "stop"}
    ]


def check_anthropic_tool_use(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "claude-sonnet-4-20250514"
    assert res.finish_reasons == ["tool_use"]
    assert res.output_text == "I'll check the current weather in Paris for you."
    assert res.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "I'll check the current weather in Paris for you."},
                {
                    "type": "tool_call",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert (res.input_tokens, res.output_tokens) == (412, 76)


def check_anthropic_stream(res: ParsedResponse | None) -> None:
    assert res is not None
    assert (res.provider, res.operation) == ("anthropic", "chat")
    assert res.response_model == "claude-haiku-4-5-20251001"
    assert res.response_id == "msg_01Xz7Kq2VbN9mLp4RtWc3Hy8"
    assert res.finish_reasons == ["end_turn"]
    assert res.output_text == ANTHROPIC_STREAM_TEXT
    assert (res.input_tokens, res.cache_read_input_tokens, res.output_tokens) == (18 + 1024, 1024, 33)
    assert res.output_messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANTHROPIC_STREAM_TEXT}], "finish_reason": "stop"}
    ]


def check_anthropic_stream_tool_use(res: ParsedResponse | None) -> None:
    assert res is not None
    assert res.response_model == "claude-sonnet-4-5-20250929"
    assert res.finish_reasons == ["tool_use"]
    assert res.output_text == "I'll check the current weather in Paris."
    assert res.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "I'll check the current weather in Paris."},
                {
                    "type": "tool_call",
                    "id": "toolu_01KqPx5Wm3Zr8Tn2Vb6Yc4Hd",
                    "name": "get_weather",
                    "arguments": WEATHER_ARGS,
                },
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert (res.input_tokens, res.output_tokens) == (405, 69)


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


class _Exploding:
    """An object whose attributes raise: parsing must not propagate that."""

    object = "chat.completion"

    @property
    def choices(self) -> list[Any]:
        raise RuntimeError("boom")

    @property
    def usage(self) -> Any:
        raise RuntimeError("boom")


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


# --------------------------------------------------------------------------------------------------------------------
# Real SDK clients over an in-process transport
# --------------------------------------------------------------------------------------------------------------------


def test_openai_chat_completion_real_client() -> None:
    server = FixtureServer("openai_chat_completion.json")
    completion = openai_client(server).chat.completions.create(**CHAT_KWARGS)
    assert type(completion).__name__ == "ChatCompletion"
    check_openai_chat(parse_response(completion))
    assert server.last_request.method == "POST"
    assert server.last_request.path == "/v1/chat/completions"
    assert server.last_json == CHAT_KWARGS
    req = parse_request(CHAT_KWARGS)
    assert_request_agrees(req, server.last_json)
    assert req.extra_params == {"reasoning_effort": "low", "service_tier": "default"}


def test_openai_chat_logprobs_and_tool_call_real_client() -> None:
    server = FixtureServer("openai_chat_completion_logprobs.json", "openai_chat_tool_call.json")
    client = openai_client(server)
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}], "logprobs": True}
    check_openai_logprobs(parse_response(client.chat.completions.create(**kwargs)))
    assert server.last_json["logprobs"] is True
    assert parse_request(kwargs).extra_params == {"logprobs": True}
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
    ]
    kwargs = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools}
    check_openai_tool_call(parse_response(client.chat.completions.create(**kwargs)))
    assert server.last_json["tools"] == tools
    assert len(server.requests) == 2


def test_openai_chat_stream_real_client() -> None:
    server = FixtureServer("openai_chat_stream.sse")
    kwargs = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Why is the sky blue? One sentence."}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
    }
    stream = openai_client(server).chat.completions.create(**kwargs)
    chunks = list(stream)
    assert {type(c).__name__ for c in chunks} == {"ChatCompletionChunk"}
    check_openai_chat_stream(parse_stream(chunks))
    assert server.last_json == kwargs
    assert_request_agrees(parse_request(kwargs), server.last_json)


def test_openai_chat_stream_helper_events_real_client() -> None:
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    client = openai_client("openai_chat_stream.sse")
    with client.chat.completions.stream(**kwargs, stream_options={"include_usage": True}) as stream:
        events = list(stream)
    assert "content.delta" in {e.type for e in events}
    check_openai_chat_stream(parse_stream(events))  # content.delta events must not double the text


def test_openai_chat_stream_tool_call_real_client() -> None:
    client = openai_client("openai_chat_stream_tool_call.sse")
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "Weather in Paris?"}], stream=True
        )
    )
    check_openai_chat_stream_tool_call(parse_stream(chunks))


def test_openai_responses_real_client() -> None:
    server = FixtureServer("openai_responses.json")
    kwargs = {
        "model": "gpt-5-mini",
        "instructions": "You are a terse poet.",
        "input": "Write a haiku about observability.",
        "reasoning": {"effort": "medium"},
    }
    response = openai_client(server).responses.create(**kwargs)
    assert type(response).__name__ == "Response"
    check_responses(parse_response(response))
    assert response.output_text == RESPONSES_TEXT  # the SDK's own view agrees
    assert server.last_request.path == "/v1/responses"
    assert server.last_json == kwargs
    req = parse_request(kwargs)
    assert (req.operation, req.model, req.extra_params) == ("chat", "gpt-5-mini", {"reasoning_effort": "medium"})
    assert req.system_instructions == [{"type": "text", "content": "You are a terse poet."}]


def test_openai_responses_stream_real_client() -> None:
    server = FixtureServer("openai_responses_stream.sse")
    kwargs = {"model": "gpt-4.1", "input": "Say hello in French.", "stream": True, "temperature": 0.2}
    events = list(openai_client(server).responses.create(**kwargs))
    assert type(events[-1]).__name__ == "ResponseCompletedEvent"
    check_responses_stream(parse_stream(events))
    assert server.last_json == kwargs
    assert_request_agrees(parse_request(kwargs), server.last_json)


def test_openai_legacy_completion_real_client() -> None:
    server = FixtureServer("openai_completion.json")
    kwargs = {"model": "gpt-3.5-turbo-instruct", "prompt": "What is observability?", "max_tokens": 32}
    completion = openai_client(server).completions.create(**kwargs)
    res = parse_response(completion)
    assert res is not None and res.operation == "text_completion" and (res.input_tokens, res.output_tokens) == (6, 18)
    assert server.last_request.path == "/v1/completions"
    assert_request_agrees(parse_request(kwargs), server.last_json)


def test_openai_error_fixture_raises_sdk_error() -> None:
    client = openai_client(FixtureServer("openai_error_rate_limit.json", status_code=429))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "rate_limit_exceeded"


def test_anthropic_message_real_client() -> None:
    server = FixtureServer("anthropic_message.json")
    message = anthropic_client(server).messages.create(**ANTHROPIC_KWARGS)
    assert type(message).__name__ == "Message"
    check_anthropic(parse_response(message))
    assert server.last_request.path == "/v1/messages"
    assert server.last_json == ANTHROPIC_KWARGS
    req = parse_request(ANTHROPIC_KWARGS)
    assert_request_agrees(req, server.last_json)
    assert req.system_instructions == [{"type": "text", "content": "Answer from the policy."}]


def test_anthropic_tool_use_real_client() -> None:
    server = FixtureServer("anthropic_tool_use.json")
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}]
    kwargs = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "tools": tools,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    }
    check_anthropic_tool_use(parse_response(anthropic_client(server).messages.create(**kwargs)))
    assert server.last_json["tools"] == tools


def test_anthropic_stream_real_client() -> None:
    server = FixtureServer("anthropic_stream.sse")
    kwargs = {
        "model": "claude-haiku-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "What is observability?"}],
        "stream": True,
    }
    events = list(anthropic_client(server).messages.create(**kwargs))
    assert events[0].type == "message_start"
    check_anthropic_stream(parse_stream(events))
    assert server.last_json == kwargs
    assert_request_agrees(parse_request(kwargs), server.last_json)


def test_anthropic_stream_tool_use_real_client() -> None:
    client = anthropic_client("anthropic_stream_tool_use.sse")
    events = list(
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            stream=True,
        )
    )
    check_anthropic_stream_tool_use(parse_stream(events))


def test_anthropic_stream_helper_real_client() -> None:
    """``client.messages.stream()``: both its event stream and its ``text_stream`` strings parse."""
    kwargs = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}]}
    client = anthropic_client(FixtureServer("anthropic_stream.sse", "anthropic_stream_tool_use.sse"))
    with client.messages.stream(**kwargs) as stream:
        events = list(stream)
    assert {"text", "content_block_delta", "message_stop"} <= {e.type for e in events}
    check_anthropic_stream(parse_stream(events))
    with client.messages.stream(**kwargs) as stream:
        texts = list(stream.text_stream)
    assert all(isinstance(t, str) for t in texts)
    res = parse_stream(texts)
    assert res == ParsedResponse(output_text="I'll check the current weather in Paris.")


def test_anthropic_error_fixture_raises_sdk_error() -> None:
    client = anthropic_client(FixtureServer("anthropic_error_overloaded.json", status_code=529))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529


@pytest.mark.asyncio
async def test_async_openai_chat_and_stream() -> None:
    server = FixtureServer("openai_chat_completion.json", "openai_chat_stream.sse")
    client = openai_client(server, async_=True)
    assert type(client).__name__ == "AsyncOpenAI"
    check_openai_chat(parse_response(await client.chat.completions.create(**CHAT_KWARGS)))
    assert server.requests[0].json == CHAT_KWARGS
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    check_openai_chat_stream(parse_stream(chunks))
    assert server.last_json["stream"] is True


@pytest.mark.asyncio
async def test_async_openai_responses() -> None:
    server = FixtureServer("openai_responses.json", "openai_responses_stream.sse")
    client = openai_client(server, async_=True)
    check_responses(parse_response(await client.responses.create(model="gpt-5-mini", input="Write a haiku.")))
    stream = await client.responses.create(model="gpt-4.1", input="Say hello in French.", stream=True)
    check_responses_stream(parse_stream([event async for event in stream]))
    assert [r.path for r in server.requests] == ["/v1/responses", "/v1/responses"]


@pytest.mark.asyncio
async def test_async_anthropic_message_and_stream() -> None:
    server = FixtureServer("anthropic_message.json", "anthropic_stream.sse")
    client = anthropic_client(server, async_=True)
    assert type(client).__name__ == "AsyncAnthropic"
    check_anthropic(parse_response(await client.messages.create(**ANTHROPIC_KWARGS)))
    assert server.requests[0].json == ANTHROPIC_KWARGS
    stream = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    check_anthropic_stream(parse_stream([event async for event in stream]))
    async with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
    ) as helper:
        events = [event async for event in helper]
    check_anthropic_stream(parse_stream(events))


# --------------------------------------------------------------------------------------------------------------------
# Fast paths agree with the general paths
# --------------------------------------------------------------------------------------------------------------------
# Plain dicts take shortcuts (parse_request runs only the steps for keys present, chat.completion dicts skip the
# generic walk, stream chunks use dict.get); a read-only mapping proxy of the same data takes the general path.


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}], "temperature": 0.2},
        {
            "messages": [
                {"role": "tool", "content": "18C"},
                {"role": "developer", "content": "d"},
                {"role": "", "content": ""},
            ]
        },
        {"model": "gpt-4o", "messages": "hi", "prompt": "p", "temperature": 1, "stop": ("a", 3), "n": 2.0},
        {"model": "m", "prompt": ["a", "b"], "input": "x", "max_completion_tokens": 9, "max_tokens": "x", "seed": 3.0},
        {
            "model": "text-embed",
            "input": ["a"],
            "text": {"format": {"type": "text"}, "verbosity": "low"},
            "verbosity": "high",
        },
        {"temperature": 10**400, "top_p": 0.5, "max_tokens": 5},  # float() overflows: both stop at the same step
        {
            "model": "claude-x",
            "system": "s",
            "instructions": "i",
            "thinking": {"type": "enabled"},
            "tool_choice": "auto",
        },
        {"reasoning": {"effort": "low"}, "output_config": {"effort": "high"}, "conversation": "conv_1", "store": True},
        {5: "non-str key", "model": "o3", "messages": [None, "s", {"role": "user", "content": ["t"], "name": "n"}]},
    ],
)
def test_parse_request_dict_fast_path_matches_general_path(kwargs: dict[str, Any]) -> None:
    from types import MappingProxyType

    fast = parse_request(kwargs)
    assert repr(fast) == repr(parse_request(MappingProxyType(kwargs)))  # repr: types and key order match too
    for key in reversed(list(kwargs)):  # key order in the dict does not change the order of the steps
        shuffled = {key: kwargs[key], **kwargs}
        assert repr(parse_request(shuffled)) == repr(fast)


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


@pytest.mark.parametrize("fixture", ["openai_chat_stream.sse", "openai_chat_stream_tool_call.sse"])
def test_parse_stream_dict_chunks_match_general_path(fixture: str) -> None:
    from types import MappingProxyType

    events = sse_events(fixture)
    assert repr(parse_stream(events)) == repr(parse_stream([MappingProxyType(e) for e in events]))


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
