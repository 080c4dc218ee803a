"""``instrument("openai")`` on recorded OpenAI interactions: chat, choices, tools, parameters, raw responses,
errors, embeddings and the Responses API, sync and async, read back from chDB.

The bodies are the real recordings of opentelemetry-python-contrib's cassettes (``tests/fixtures/cassettes``),
replayed through the real ``openai`` client; no function is decorated.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from llmpulse.agent import observe

from llmpulse import agent
from tests.agent.integrations.cassettes import Cassette, openai_client
from tests.agent.integrations.recorded import (
    PRICES,
    cost,
    one_row,
    one_span,
    output_parts,
    recorded,
    replace_usage,
    rows,
)

openai = pytest.importorskip("openai", reason="the openai integration replays through the real client")

INSTRUMENT = ("openai",)
QUESTION = [{"role": "user", "content": "Say this is a test"}]
__all__ = ["recorded"]


def _cassette(name: str, **kwargs: Any) -> Cassette:
    return Cassette(f"openai/{name}.yaml", **kwargs)


# --- chat completions ------------------------------------------------------------------------------------------


def test_a_chat_completion_is_one_llm_span_with_model_tokens_cost_and_content(recorded, ch) -> None:
    cassette = _cassette("test_chat_completion_with_content")
    completion = openai_client(cassette).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=False)
    assert isinstance(completion, openai.types.chat.ChatCompletion) and completion.choices[0].message.content == (
        "This is a test."
    )

    row = one_row(ch, recorded)
    assert (row["Provider"], row["Operation"], row["RequestModel"]) == ("openai", "chat", "gpt-4o-mini")
    assert (
        row["ResponseModel"] == "gpt-4o-mini-2024-07-18"
        and row["ResponseId"] == "chatcmpl-ASYMQRl3A3DXL9FWCK9tnGRcKIO7q"
    )
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadInputTokens"], row["ReasoningOutputTokens"]) == (
        12,
        5,
        0,
        0,
    )
    assert row["CostUSD"] == pytest.approx(cost("gpt-4o-mini-2024-07-18", 12, 5, 0))
    assert row["PromptText"] == "Say this is a test" and row["ResponseText"] == "This is a test."
    assert row["FinishReasons"] == ["stop"] and row["StatusCode"] == "Unset" and row["ParentSpanId"] == ""
    assert row["Stream"] is False


def test_async_chat_completion(recorded, ch) -> None:
    client = openai_client(_cassette("test_async_chat_completion_with_content"), async_=True)
    completion = asyncio.run(client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=False))
    assert completion.choices[0].message.content == "This is a test. How can I assist you further?"
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["OutputTokens"]) == (12, 12) and row["ResponseText"] == completion.choices[
        0
    ].message.content
    assert row["CostUSD"] == pytest.approx(cost("gpt-4o-mini", 12, 12, 0))


def test_multiple_choices_keep_every_finish_reason_and_message(recorded, ch) -> None:
    client = openai_client(_cassette("test_chat_completion_multiple_choices"))
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, n=2, stream=False)
    assert len(completion.choices) == 2
    row = one_row(ch, recorded)
    assert row["FinishReasons"] == ["stop", "stop"] and len(json.loads(row["OutputMessages"])) == 2
    assert (row["InputTokens"], row["OutputTokens"]) == (12, 24)
    assert one_span(recorded).attributes["gen_ai.request.choice.count"] == 2


def test_request_parameters_are_recorded(recorded, ch) -> None:
    client = openai_client(_cassette("test_chat_completion_extra_params"))
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=QUESTION,
        max_tokens=50,
        response_format={"type": "text"},
        seed=42,
        stream=False,
        temperature=0.5,
        service_tier="default",
    )
    row = one_row(ch, recorded)
    assert (row["Temperature"], row["MaxTokens"]) == (0.5, 50)
    a = one_span(recorded).attributes
    assert a["gen_ai.request.seed"] == 42 and a["gen_ai.output.type"] == "text"
    assert json.loads(row["RequestParams"]) == {"service_tier": "default"}


def test_a_tool_call_round_trip_is_two_spans_with_the_tool_call_and_the_answer(recorded, ch) -> None:
    cassette = _cassette("test_chat_completion_tool_calls_with_content")
    client = openai_client(cassette)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    messages: list[Any] = [
        {"role": "system", "content": "You're a helpful assistant."},
        {"role": "user", "content": "What's the weather in Seattle and San Francisco today?"},
    ]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tool_choice="auto", tools=tools)
    calls = first.choices[0].message.tool_calls
    messages.append({"role": "assistant", "tool_calls": [c.model_dump() for c in calls]})
    weather = {"Seattle": "50 degrees and raining", "San Francisco": "70 degrees and sunny"}
    for call in calls:
        place = json.loads(call.function.arguments)["location"].split(",")[0]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": weather.get(place, "unknown")})
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert "Seattle" in second.choices[0].message.content

    first_row, second_row = rows(ch, recorded)
    assert first_row["FinishReasons"] == ["tool_calls"] and first_row["ResponseText"] == ""
    tool_calls = [p for p in output_parts(first_row) if p["type"] == "tool_call"]
    assert [c["name"] for c in tool_calls] == ["get_current_weather", "get_current_weather"]
    assert {c["arguments"]["location"].split(",")[0] for c in tool_calls} == {"Seattle", "San Francisco"}
    assert (first_row["InputTokens"], first_row["OutputTokens"]) == (75, 51)
    assert second_row["FinishReasons"] == ["stop"] and second_row["ResponseText"] == second.choices[0].message.content
    sent = json.loads(second_row["InputMessages"])
    assert sent[2]["role"] == "assistant" and sent[3]["role"] == "tool", "the history as sent, tool results included"


def test_parse_posts_directly_and_is_recorded_once(recorded, ch) -> None:
    completion = openai_client(_cassette("test_chat_completion_with_content")).chat.completions.parse(
        model="gpt-4o-mini", messages=QUESTION
    )
    assert completion.choices[0].message.content == "This is a test."
    row = one_row(ch, recorded)
    assert row["ResponseText"] == "This is a test." and (row["InputTokens"], row["OutputTokens"]) == (12, 5)


# --- with_raw_response ------------------------------------------------------------------------------------------


def test_a_raw_response_goes_back_unchanged_and_the_span_reads_the_parsed_one(recorded, ch) -> None:
    client = openai_client(_cassette("test_chat_completion_with_raw_response"))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert raw.headers["x-request-id"] == "req_58cff97afd0e7c0bba910ccf0b044a6f", "the recorded headers, for the app"
    completion = raw.parse()
    assert isinstance(completion, openai.types.chat.ChatCompletion) and raw.parse() is completion
    row = one_row(ch, recorded)
    assert row["ResponseText"] == "This is a test." and (row["InputTokens"], row["OutputTokens"]) == (12, 5)
    assert row["CostUSD"] == pytest.approx(cost("gpt-4o-mini", 12, 5, 0))


def test_async_raw_response(recorded, ch) -> None:
    client = openai_client(_cassette("test_async_chat_completion_with_raw_response"), async_=True)
    raw = asyncio.run(client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION))
    assert raw.http_response.status_code == 200 and raw.parse().choices[0].message.content == "This is a test."
    row = one_row(ch, recorded)
    assert row["ResponseText"] == "This is a test." and row["OutputTokens"] == 5


# --- errors -----------------------------------------------------------------------------------------------------


def test_a_404_is_recorded_as_an_error_and_raised_unchanged(recorded, ch) -> None:
    client = openai_client(_cassette("test_chat_completion_404"))
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="this-model-does-not-exist", messages=QUESTION)
    assert info.value.status_code == 404
    row = one_row(ch, recorded)
    assert row["StatusCode"] == "Error" and row["ErrorType"] == "NotFoundError"
    assert "does not exist" in row["StatusMessage"] and row["RequestModel"] == "this-model-does-not-exist"
    assert row["InputTokens"] is None and row["CostUSD"] is None


def test_responses_400_errors_sync_and_async(recorded, ch) -> None:
    client = openai_client(_cassette("test_responses_404"))
    async_client = openai_client(_cassette("test_responses_create_api_error[content_mode0]"), async_=True)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="this-model-does-not-exist", input="Say test")
    with pytest.raises(openai.BadRequestError):
        asyncio.run(async_client.responses.create(model="this-model-does-not-exist", input="Hello"))
    found = rows(ch, recorded)
    assert [r["ErrorType"] for r in found] == ["BadRequestError", "BadRequestError"]
    assert all(r["StatusCode"] == "Error" and r["OutputTokens"] is None for r in found)


# --- embeddings -------------------------------------------------------------------------------------------------


def test_embeddings_record_input_tokens_cost_and_no_output(recorded, ch) -> None:
    client = openai_client(_cassette("test_embeddings_with_content"))
    result = client.embeddings.create(model="text-embedding-3-small", input="This is a test for embeddings")
    assert len(result.data[0].embedding) > 0
    row = one_row(ch, recorded)
    assert (row["Operation"], row["RequestModel"], row["InputTokens"]) == ("embeddings", "text-embedding-3-small", 6)
    assert row["OutputTokens"] is None and row["CostUSD"] == pytest.approx(cost("text-embedding-3-small", 6, 0))
    assert row["PromptText"] == "This is a test for embeddings", "the input, not the model name"


def test_embeddings_with_dimensions_and_a_missing_model(recorded, ch) -> None:
    openai_client(_cassette("test_embeddings_with_dimensions")).embeddings.create(
        model="text-embedding-3-small", input="This is a test for embeddings with dimensions", dimensions=512
    )
    with pytest.raises(openai.NotFoundError):
        openai_client(_cassette("test_embeddings_model_not_found")).embeddings.create(
            model="non-existent-embedding-model", input="This is a test for embeddings with bad model"
        )
    ok, failed = rows(ch, recorded)
    assert ok["InputTokens"] == 8 and ok["Operation"] == "embeddings"
    assert failed["ErrorType"] == "NotFoundError" and failed["Operation"] == "embeddings"


# --- Responses API ----------------------------------------------------------------------------------------------


def test_responses_sync_and_async(recorded, ch) -> None:
    client = openai_client(_cassette("test_responses_basic_with_content"))
    texts = [client.responses.create(model="gpt-4o-mini", input="Say hello").output_text for _ in range(2)]
    async_client = openai_client(_cassette("test_async_responses_basic"), async_=True)
    texts.append(asyncio.run(async_client.responses.create(model="gpt-4o-mini", input="Say hello")).output_text)
    found = rows(ch, recorded)
    assert [r["ResponseText"] for r in found] == texts
    assert [(r["InputTokens"], r["OutputTokens"]) for r in found] == [(9, 8), (9, 10), (9, 10)]
    assert all(r["FinishReasons"] == ["completed"] and r["PromptText"] == "Say hello" for r in found)


def test_responses_parameters_instructions_and_stop_reason(recorded, ch) -> None:
    client = openai_client(_cassette("test_responses_create_with_all_params[content_mode0]"))
    client.responses.create(
        model="gpt-4o-mini",
        input="Say this is a test",
        instructions="You are a helpful assistant.",
        max_output_tokens=50,
        service_tier="default",
        temperature=0.7,
        text={"format": {"type": "text"}},
        top_p=0.9,
    )
    row = one_row(ch, recorded)
    assert (row["Temperature"], row["TopP"], row["MaxTokens"]) == (0.7, 0.9, 50)
    assert row["ResponseText"] == "This is a test." and row["FinishReasons"] == ["completed"]
    a = one_span(recorded).attributes
    assert json.loads(a["gen_ai.system_instructions"])[0]["content"] == "You are a helpful assistant."


def test_responses_tool_call(recorded, ch) -> None:
    client = openai_client(_cassette("test_responses_create_captures_tool_call_content[content_mode0]"))
    tools = [
        {
            "type": "function",
            "name": "get_current_weather",
            "description": "Get the current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ]
    response = client.responses.create(
        model="gpt-4o-mini",
        input="What's the weather in Seattle right now?",
        tools=tools,
        tool_choice={"type": "function", "name": "get_current_weather"},
    )
    assert response.output[0].type == "function_call"
    row = one_row(ch, recorded)
    parts = output_parts(row)
    assert parts[0]["type"] == "tool_call" and parts[0]["name"] == "get_current_weather"
    assert (row["InputTokens"], row["OutputTokens"]) == (72, 8)


def test_responses_reasoning_tokens_are_inside_the_output_tokens(recorded, ch) -> None:
    """Recorded: gpt-5.4 reported 288 output tokens, 9 of them reasoning; they are charged once, as output."""
    client = openai_client(_cassette("test_responses_create_reports_reasoning_tokens[content_mode0]"))
    client.responses.create(
        model="gpt-5.4",
        input=[{"role": "user", "content": "Write a bash script that prints the transpose of a matrix."}],
        max_output_tokens=300,
        reasoning={"effort": "low"},
    )
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["OutputTokens"], row["ReasoningOutputTokens"]) == (44, 288, 9)
    assert row["ResponseText"].startswith("```bash")
    # priced by litellm's list when it is installed (the vendored table has no gpt-5.4); NULL, never 0, otherwise
    expected = PRICES.span_cost(("gpt-5.4-2026-03-05", "gpt-5.4"), 44, 288, 0)
    assert row["CostUSD"] == (None if expected is None else pytest.approx(expected))


def test_responses_cached_tokens_are_inside_the_input_tokens(recorded, ch) -> None:
    """The recording reports cached_tokens 0: the usage block is rewritten with non-zero values in the shape
    OpenAI documents for Responses (``input_tokens_details.cached_tokens`` counted inside ``input_tokens``)."""
    usage = {
        "input_tokens": 2006,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2012,
    }
    cassette = _cassette("test_responses_create_aggregates_cache_tokens[content_mode0]", rewrite=replace_usage(usage))
    openai_client(cassette).responses.create(
        model="gpt-4o-mini", input="Say this is a test", instructions="You are a helpful assistant."
    )
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["CacheReadInputTokens"], row["OutputTokens"]) == (2006, 1920, 6)
    # 86 uncached at the input price, 1920 at the cache-read price: no token charged twice
    expected = (86 * 0.15 + 1920 * 0.075 + 6 * 0.6) / 1e6
    assert row["CostUSD"] == pytest.approx(expected) == cost("gpt-4o-mini", 2006, 6, 1920)


def test_chat_cached_tokens_are_inside_the_prompt_tokens(recorded, ch) -> None:
    """Rewritten usage (the recording's cached_tokens is 0), in the shape of OpenAI's prompt caching guide."""
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    cassette = _cassette("test_chat_completion_with_content", rewrite=replace_usage(usage))
    openai_client(cassette).chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["CacheReadInputTokens"], row["OutputTokens"]) == (2006, 1920, 300)
    assert row["CostUSD"] == pytest.approx((86 * 0.15 + 1920 * 0.075 + 300 * 0.6) / 1e6)


# --- the span rules with recorded bodies -----------------------------------------------------------------------


def test_inside_an_llm_function_the_recorded_call_is_folded(recorded, ch) -> None:
    client = openai_client(_cassette("test_chat_completion_with_content"))

    @observe(kind="llm")
    def answer(question: str) -> str:
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])

    answer("Say this is a test")
    row = one_row(ch, recorded)
    assert row["SpanName"] == "chat gpt-4o-mini" and (row["InputTokens"], row["OutputTokens"]) == (12, 5)


def test_not_configured_the_patched_client_still_answers(ch) -> None:
    agent.instrument("openai")
    try:
        completion = openai_client(_cassette("test_chat_completion_with_content")).chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION
        )
        assert completion.choices[0].message.content == "This is a test."
    finally:
        agent.uninstrument()


@pytest.mark.parametrize(
    ("name", "question", "tokens"),
    [
        ("test_responses_create_stop_reason[content_mode0]", "Say hi.", (20, 10)),
        ("test_responses_create_token_usage[content_mode0]", "Count to 5.", (22, 22)),
    ],
)
def test_more_recorded_responses(recorded, ch, name: str, question: str, tokens: tuple) -> None:
    response = openai_client(_cassette(name)).responses.create(
        model="gpt-4o-mini", input=question, instructions="You are a helpful assistant."
    )
    row = one_row(ch, recorded)
    assert (row["InputTokens"], row["OutputTokens"]) == tokens and row["ResponseText"] == response.output_text
    assert row["FinishReasons"] == ["completed"] and row["CostUSD"] == pytest.approx(cost("gpt-4o-mini", *tokens, 0))
