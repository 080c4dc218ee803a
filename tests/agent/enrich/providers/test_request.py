"""Request kwargs of every provider API to a ParsedRequest: odd values, SDK sentinels, and the dict fast path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedRequest,
    parse_request,
)

from tests.agent.enrich.providers.recorded import (
    ANTHROPIC_KWARGS,
    WEATHER_ARGS,
)


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
