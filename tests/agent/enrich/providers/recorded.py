"""Recorded request kwargs and bodies (tests/fixtures/providers) and the values a correct parser must read from them."""

from __future__ import annotations

from typing import Any

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedRequest,
    ParsedResponse,
)

from tests.agent.provider_fakes import (
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_TEXT,
    OPENAI_CHAT_TEXT,
    OPENAI_STREAM_TEXT,
    RESPONSES_STREAM_TEXT,
    RESPONSES_TEXT,
)

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


class _Exploding:
    """An object whose attributes raise: parsing must not propagate that."""

    object = "chat.completion"

    @property
    def choices(self) -> list[Any]:
        raise RuntimeError("boom")

    @property
    def usage(self) -> Any:
        raise RuntimeError("boom")
