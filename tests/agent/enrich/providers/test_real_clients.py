"""The OpenAI and Anthropic SDK clients over an in-process transport: what they send and return parses right."""

from __future__ import annotations

import pytest
from llmpulse.agent.enrich.providers import (
    ParsedResponse,
    parse_request,
    parse_response,
    parse_stream,
)

from tests.agent.enrich.providers.recorded import (
    ANTHROPIC_KWARGS,
    CHAT_KWARGS,
    assert_request_agrees,
    check_anthropic,
    check_anthropic_stream,
    check_anthropic_stream_tool_use,
    check_anthropic_tool_use,
    check_openai_chat,
    check_openai_chat_stream,
    check_openai_chat_stream_tool_call,
    check_openai_logprobs,
    check_openai_tool_call,
    check_responses,
    check_responses_stream,
)
from tests.agent.provider_fakes import (
    RESPONSES_TEXT,
    FixtureServer,
    anthropic_client,
    openai_client,
)

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

# The recorded Anthropic bodies come from claude-sonnet-4-5, which anthropic 2.x flags as deprecated on request.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


# --------------------------------------------------------------------------------------------------------------------
# Real SDK clients over an in-process transport
# --------------------------------------------------------------------------------------------------------------------


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
