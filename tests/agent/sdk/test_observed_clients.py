"""End to end, synchronous clients: app code under ``@observe`` calls the real openai / anthropic clients (in-process fake server).

Each test checks both what the finished span says (the ``configured`` fixture's span collector) and the row the
materialized view derives in ``llm_calls``. Request parameters come from the decorated function's own arguments,
so the functions below take ``model, messages, **params`` and forward them to the client (the documented pattern).
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from llmpulse.agent import observe

from llmpulse import agent
from tests.agent.provider_fakes import (
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_TEXT,
    OPENAI_STREAM_TEXT,
    RESPONSES_STREAM_TEXT,
    RESPONSES_TEXT,
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
# 1. sync chat completions
# --------------------------------------------------------------------------------------------------------------------


def test_sync_chat_parameters_forwarded_from_the_decorated_function(configured, ch) -> None:
    server = FixtureServer("openai_chat_completion_logprobs.json")
    client = openai_client(server)

    @observe
    def ask(model: str, messages: list, **params: Any) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **params)

    messages = [{"role": "system", "content": "Be brief."}, *QUESTION]
    completion = ask(model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64, logprobs=True)
    assert isinstance(completion, openai.types.chat.ChatCompletion), "the app gets the SDK object back, unwrapped"
    assert completion.choices[0].message.content == LOGPROBS_TEXT
    assert server.last_json == {
        "model": "gpt-4o-mini",
        "messages": messages,
        "temperature": 0.2,
        "max_tokens": 64,
        "logprobs": True,
    }
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert span.kind == "Client" and span.is_llm and span.status_code == "Unset"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == "chatcmpl-C3kGa1bXq9uYtWvZ0c3RmPe5LfJoK"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.usage.input_tokens"] == 24 and a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert json.loads(a["llmpulse.request.params"]) == {"logprobs": True}
    assert "gen_ai.request.stream" not in a and "llmpulse.stream.state" not in a
    sent = json.loads(a["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[1]["parts"] == [{"type": "text", "content": "Capital of France?"}]
    assert a["llmpulse.output.text"] == LOGPROBS_TEXT
    assert len(json.loads(a["llmpulse.output.token_logprobs"])) == 7

    row = _row(ch, configured)
    assert (row["RequestModel"], row["ResponseModel"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (row["Provider"], row["Operation"]) == ("openai", "chat")
    assert (row["InputTokens"], row["OutputTokens"]) == (24, 7)
    assert (row["CacheReadInputTokens"], row["ReasoningOutputTokens"]) == (0, 0)
    assert row["Temperature"] == 0.2 and row["MaxTokens"] == 64
    assert row["Stream"] is False
    assert row["TimeToFirstTokenSeconds"] is None
    assert row["FinishReasons"] == ["stop"]
    assert row["ResponseId"] == "chatcmpl-C3kGa1bXq9uYtWvZ0c3RmPe5LfJoK"
    assert row["PromptText"] == "Capital of France?" and row["ResponseText"] == LOGPROBS_TEXT
    assert (row["StatusCode"], row["ErrorType"]) == ("Unset", "")
    _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 24, 7, 0)


@pytest.mark.parametrize("returns", ["completion", "text"])
def test_sync_chat_model_named_in_the_decorator(configured, ch, returns: str) -> None:
    server = FixtureServer("openai_chat_completion_logprobs.json")
    client = openai_client(server)

    @observe(model="gpt-4o-mini")
    def ask(question: str) -> Any:
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}], temperature=0.9
        )
        return completion if returns == "completion" else completion.choices[0].message.content

    result = ask("Capital of France?")
    assert (result.choices[0].message.content if returns == "completion" else result) == LOGPROBS_TEXT
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert span.is_llm and a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.provider.name"] == "openai"
    # the prompt is the decorated function's string argument; parameters given only to the client are not seen
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}
    ]
    assert "gen_ai.request.temperature" not in a
    assert a["llmpulse.output.text"] == LOGPROBS_TEXT

    row = _row(ch, configured)
    assert (row["RequestModel"], row["Provider"], row["Operation"]) == ("gpt-4o-mini", "openai", "chat")
    assert row["PromptText"] == "Capital of France?" and row["ResponseText"] == LOGPROBS_TEXT
    assert row["Temperature"] is None
    if returns == "completion":
        assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
        assert (row["InputTokens"], row["OutputTokens"]) == (24, 7)
        _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 24, 7, 0)
    else:  # only text came back: no usage to read, so no tokens and no cost (NULL, not 0)
        assert "gen_ai.usage.input_tokens" not in a and "llmpulse.cost.usd" not in a
        assert row["InputTokens"] is None and row["OutputTokens"] is None and row["CostUSD"] is None


def test_chain_around_client_call_nests_the_llm_span(configured, ch) -> None:
    client = openai_client("openai_chat_completion_logprobs.json")

    @observe
    def ask(model: str, messages: list, **params: Any) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **params)

    @observe
    def answer(question: str) -> str:
        return ask(model="gpt-4o-mini", messages=[{"role": "user", "content": question}]).choices[0].message.content

    assert answer("Capital of France?") == LOGPROBS_TEXT
    assert agent.flush()
    c = configured["collector"]
    root = c.one("test_chain_around_client_call_nests_the_llm_span.<locals>.answer")
    llm = c.one("chat gpt-4o-mini")
    assert not root.is_llm and root.attributes["llmpulse.span.type"] == "chain"
    assert llm.parent_id == root.span_id and llm.trace_id == root.trace_id
    row = _row(ch, configured)
    assert row["SpanName"] == "chat gpt-4o-mini" and row["ParentSpanId"] == f"{root.span_id:016x}"


def test_bare_observe_around_the_client_call_as_in_the_package_docstring(configured, ch) -> None:
    """``@observe def answer(question)`` with the model only inside: usage, cost and content are still recorded."""
    client = openai_client("openai_chat_completion_logprobs.json")

    @observe
    def answer(question: str) -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])

    assert answer("Capital of France?").choices[0].message.content == LOGPROBS_TEXT
    assert agent.flush()
    (span,) = [s for s in configured["collector"].spans if s.is_llm]
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.usage.input_tokens"] == 24 and a["gen_ai.usage.output_tokens"] == 7
    row = _row(ch, configured)
    assert row["ResponseModel"] == "gpt-4o-mini-2024-07-18" and (row["InputTokens"], row["OutputTokens"]) == (24, 7)
    assert row["PromptText"] == "Capital of France?" and row["ResponseText"] == LOGPROBS_TEXT
    _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 24, 7, 0)


# --------------------------------------------------------------------------------------------------------------------
# 2. sync chat streaming: the decorated function returns the SDK Stream, the caller iterates it
# --------------------------------------------------------------------------------------------------------------------


def _chat_streamer(server: FixtureServer) -> Any:
    client = openai_client(server)

    @observe
    def chat_stream(model: str, messages: list, **params: Any) -> Any:
        return client.chat.completions.create(model=model, messages=messages, stream=True, **params)

    return chat_stream


def test_sync_chat_stream_returned_and_consumed(configured, ch) -> None:
    server = FixtureServer("openai_chat_stream.sse")
    stream = _chat_streamer(server)(
        model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}, temperature=0.7
    )
    assert not agent.stats().enqueued, "the span stays open until the caller has consumed the stream"
    assert stream.response.headers["x-request-id"].startswith("req_test"), "SDK attributes reach through the proxy"
    chunks = list(stream)
    assert {type(c).__name__ for c in chunks} == {"ChatCompletionChunk"}
    assert _text(chunks) == OPENAI_STREAM_TEXT
    assert server.last_json["stream"] is True and server.last_json["stream_options"] == {"include_usage": True}
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["llmpulse.stream.state"] == "completed"
    ttft = a["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttft <= (span.end_ns - span.start_ns) / 1e9
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == "chatcmpl-C3kIcU5oXgF9qRpAy3MnSzVw7EtHd"
    assert a["gen_ai.usage.input_tokens"] == 19 and a["gen_ai.usage.output_tokens"] == 19
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.request.temperature"] == 0.7
    assert a["llmpulse.output.text"] == OPENAI_STREAM_TEXT

    row = _row(ch, configured)
    assert row["Stream"] is True
    assert row["TimeToFirstTokenSeconds"] == pytest.approx(ttft)
    assert (row["InputTokens"], row["OutputTokens"]) == (19, 19)
    assert row["FinishReasons"] == ["stop"] and row["ResponseText"] == OPENAI_STREAM_TEXT
    assert row["PromptText"] == "Capital of France?" and row["Temperature"] == 0.7
    assert row["StatusCode"] == "Unset"
    _assert_cost(span, row, "gpt-4o-mini-2024-07-18", 19, 19, 0)


@pytest.mark.parametrize("how", ["break_then_close", "break_then_drop"])
def test_sync_chat_stream_abandoned_by_the_caller(configured, ch, how: str) -> None:
    stream = _chat_streamer(FixtureServer("openai_chat_stream.sse"))(
        model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}
    )
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if _text(seen) == "The sky":
            break
    if how == "break_then_close":
        stream.close()
    else:
        del stream
        gc.collect()
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert a["llmpulse.stream.state"] == "abandoned" and span.status_code == "Unset"
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["llmpulse.output.text"] == "The sky"
    assert "gen_ai.usage.output_tokens" not in a, "the usage chunk never arrived"
    row = _row(ch, configured)
    assert row["ResponseText"] == "The sky" and row["OutputTokens"] is None and row["CostUSD"] is None


def test_sync_chat_stream_as_a_context_manager(configured, ch) -> None:
    chat_stream = _chat_streamer(FixtureServer("openai_chat_stream.sse"))
    with chat_stream(model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}) as stream:
        assert _text(list(stream)) == OPENAI_STREAM_TEXT
    with chat_stream(model="gpt-4o", messages=QUESTION) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
    assert stream.response.is_closed, "leaving the block closes the SDK stream underneath"
    assert agent.flush()

    c = configured["collector"]
    done, left = c.one("chat gpt-4o-mini").attributes, c.one("chat gpt-4o").attributes
    assert done["llmpulse.stream.state"] == "completed" and done["gen_ai.usage.output_tokens"] == 19
    assert left["llmpulse.stream.state"] == "abandoned"
    rows = {r["RequestModel"]: r for r in _rows(ch, configured)}
    assert rows["gpt-4o-mini"]["OutputTokens"] == 19 and rows["gpt-4o-mini"]["Stream"] is True
    assert rows["gpt-4o"]["Stream"] is True and rows["gpt-4o"]["OutputTokens"] is None


def test_sync_chat_stream_connection_lost_midway(configured, ch) -> None:
    stream = _chat_streamer(_ResetMidStream("openai_chat_stream.sse", keep=4))(
        model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}
    )
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError) as info:
        for chunk in stream:
            received.append(chunk)
    assert _text(received) == "The sky looks"
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4o-mini")
    a = span.attributes
    assert span.status_code == "Error" and a["error.type"] == "APIConnectionError"
    assert a["llmpulse.stream.state"] == "failed" and a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["llmpulse.output.text"] == "The sky looks", "what arrived before the failure is kept"
    assert a["gen_ai.response.id"] == "chatcmpl-C3kIcU5oXgF9qRpAy3MnSzVw7EtHd"
    assert span.events[0][2]["exception.type"] == type(info.value).__qualname__
    row = _row(ch, configured)
    assert (row["StatusCode"], row["ErrorType"]) == ("Error", "APIConnectionError")
    assert row["Stream"] is True and row["ResponseText"] == "The sky looks" and row["OutputTokens"] is None


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_stream_manager_returned_from_the_decorated_function(configured, ch, provider: str) -> None:
    if provider == "anthropic":
        client = anthropic_client("anthropic_stream.sse")

        @observe
        def ask(model: str, messages: list, **params: Any) -> Any:
            return client.messages.stream(model=model, messages=messages, **params)

        with ask(model="claude-haiku-4-5", messages=QUESTION, max_tokens=256) as stream:
            assert "".join(stream.text_stream) == ANTHROPIC_STREAM_TEXT
        name, tokens = "chat claude-haiku-4-5", (1042, 33)
    else:
        client = openai_client("openai_chat_stream.sse")

        @observe
        def ask(model: str, messages: list, **params: Any) -> Any:
            return client.chat.completions.stream(model=model, messages=messages, **params)

        with ask(model="gpt-4o-mini", messages=QUESTION, stream_options={"include_usage": True}) as stream:
            assert "content.delta" in {event.type for event in stream}
        name, tokens = "chat gpt-4o-mini", (19, 19)
    assert agent.flush()
    a = configured["collector"].one(name).attributes
    assert a["gen_ai.request.stream"] is True
    assert (a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.output_tokens")) == tokens


# --------------------------------------------------------------------------------------------------------------------
# 3. Responses API
# --------------------------------------------------------------------------------------------------------------------


def test_responses_create(configured, ch) -> None:
    server = FixtureServer("openai_responses.json")
    client = openai_client(server)

    @observe
    def respond(model: str, input: str, **params: Any) -> Any:
        return client.responses.create(model=model, input=input, **params)

    response = respond(
        model="gpt-5-mini",
        input="Write a haiku about observability.",
        instructions="You are a terse poet.",
        reasoning={"effort": "medium"},
        max_output_tokens=800,
    )
    assert response.output_text == RESPONSES_TEXT
    assert server.last_request.path == "/v1/responses" and server.last_json["max_output_tokens"] == 800
    assert agent.flush()

    span = configured["collector"].one("chat gpt-5-mini")
    a = span.attributes
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.response.model"] == "gpt-5-mini-2025-08-07"
    assert a["gen_ai.request.max_tokens"] == 800
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "You are a terse poet."}]
    assert json.loads(a["llmpulse.request.params"]) == {"reasoning_effort": "medium"}
    assert a["gen_ai.usage.input_tokens"] == 1310 and a["gen_ai.usage.output_tokens"] == 277
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1152
    assert a["gen_ai.usage.reasoning.output_tokens"] == 256
    assert a["gen_ai.response.finish_reasons"] == ["completed"]

    row = _row(ch, configured)
    assert (row["RequestModel"], row["ResponseModel"]) == ("gpt-5-mini", "gpt-5-mini-2025-08-07")
    assert (row["InputTokens"], row["OutputTokens"]) == (1310, 277)
    assert (row["CacheReadInputTokens"], row["ReasoningOutputTokens"]) == (1152, 256)
    assert row["MaxTokens"] == 800 and row["FinishReasons"] == ["completed"]
    assert row["ResponseId"] == "resp_0a7f1c2e9b3d4f5a0068a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5"
    assert row["PromptText"] == "Write a haiku about observability." and row["ResponseText"] == RESPONSES_TEXT
    _assert_cost(span, row, "gpt-5-mini-2025-08-07", 1310, 277, 1152)


def test_responses_stream(configured, ch) -> None:
    client = openai_client("openai_responses_stream.sse")

    @observe
    def respond(model: str, input: str, **params: Any) -> Any:
        return client.responses.create(model=model, input=input, stream=True, **params)

    events = list(respond(model="gpt-4.1", input="Say hello in French.", temperature=0.2))
    assert type(events[-1]).__name__ == "ResponseCompletedEvent"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == RESPONSES_STREAM_TEXT
    assert agent.flush()

    span = configured["collector"].one("chat gpt-4.1")
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["llmpulse.stream.state"] == "completed"
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.usage.input_tokens"] == 14 and a["gen_ai.usage.output_tokens"] == 12
    assert a["llmpulse.output.text"] == RESPONSES_STREAM_TEXT

    row = _row(ch, configured)
    assert row["Stream"] is True and row["TimeToFirstTokenSeconds"] > 0
    assert (row["InputTokens"], row["OutputTokens"]) == (14, 12) and row["Temperature"] == 0.2
    assert row["ResponseModel"] == "gpt-4.1-2025-04-14" and row["ResponseText"] == RESPONSES_STREAM_TEXT
    assert row["FinishReasons"] == ["completed"]
    _assert_cost(span, row, "gpt-4.1-2025-04-14", 14, 12, 0)


# --------------------------------------------------------------------------------------------------------------------
# 4. Anthropic messages
# --------------------------------------------------------------------------------------------------------------------


def test_anthropic_messages_create_counts_cache_tokens_as_input(configured, ch) -> None:
    server = FixtureServer("anthropic_message.json")
    client = anthropic_client(server)

    @observe
    def ask(model: str, messages: list, **params: Any) -> Any:
        return client.messages.create(model=model, messages=messages, **params)

    message = ask(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Can I get a refund?"}],
        max_tokens=1024,
        system="Answer from the policy.",
        stop_sequences=["\n\nHuman:"],
    )
    assert isinstance(message, anthropic.types.Message) and message.content[0].text == ANTHROPIC_TEXT
    assert server.last_request.path == "/v1/messages" and server.last_json["system"] == "Answer from the policy."
    assert agent.flush()

    span = configured["collector"].one("chat claude-sonnet-4-5")
    a = span.attributes
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert a["gen_ai.response.id"] == "msg_01Hq8ZtV3xLmN5pRk2WcYd7B"
    # semconv: input tokens include cache reads and cache writes (21 uncached + 2048 read + 248 written)
    assert a["gen_ai.usage.input_tokens"] == 21 + 2048 + 248
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2048
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 248
    assert a["gen_ai.usage.output_tokens"] == 31
    assert a["gen_ai.request.max_tokens"] == 1024 and a["gen_ai.request.stop_sequences"] == ["\n\nHuman:"]
    assert a["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Answer from the policy."}]

    row = _row(ch, configured)
    assert (row["Provider"], row["RequestModel"]) == ("anthropic", "claude-sonnet-4-5")
    assert (row["InputTokens"], row["OutputTokens"]) == (2317, 31)
    assert (row["CacheReadInputTokens"], row["CacheCreationInputTokens"]) == (2048, 248)
    assert row["Temperature"] is None and row["MaxTokens"] == 1024
    assert row["FinishReasons"] == ["end_turn"] and row["ResponseText"] == ANTHROPIC_TEXT
    assert row["PromptText"] == "Can I get a refund?"
    _assert_cost(span, row, "claude-sonnet-4-5-20250929", 2317, 31, 2048, 248)
    price = PRICES.lookup("claude-sonnet-4-5")
    assert price is not None and price.cache_read_per_mtok is not None
    assert row["CostUSD"] < PRICES.cost("claude-sonnet-4-5", 2317, 31), "cache reads are billed below input price"


def test_anthropic_raw_stream_returned_and_consumed(configured, ch) -> None:
    client = anthropic_client("anthropic_stream.sse")

    @observe
    def ask_stream(model: str, messages: list, **params: Any) -> Any:
        return client.messages.create(model=model, messages=messages, stream=True, **params)

    stream = ask_stream(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "Observability?"}], max_tokens=256
    )
    assert not agent.stats().enqueued
    events = list(stream)
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == ANTHROPIC_STREAM_TEXT
    assert agent.flush()

    span = configured["collector"].one("chat claude-haiku-4-5")
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["llmpulse.stream.state"] == "completed"
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert a["gen_ai.usage.input_tokens"] == 18 + 1024 and a["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert a["gen_ai.usage.output_tokens"] == 33, "message_delta's cumulative usage wins over message_start's"
    assert a["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert a["llmpulse.output.text"] == ANTHROPIC_STREAM_TEXT

    row = _row(ch, configured)
    assert row["Stream"] is True and row["TimeToFirstTokenSeconds"] > 0
    assert (row["InputTokens"], row["OutputTokens"], row["CacheReadInputTokens"]) == (1042, 33, 1024)
    assert row["CacheCreationInputTokens"] == 0 and row["MaxTokens"] == 256
    assert row["ResponseText"] == ANTHROPIC_STREAM_TEXT and row["FinishReasons"] == ["end_turn"]
    _assert_cost(span, row, "claude-haiku-4-5-20251001", 1042, 33, 1024, 0)


def test_anthropic_stream_left_early_keeps_message_start_usage(configured, ch) -> None:
    client = anthropic_client("anthropic_stream.sse")

    @observe
    def ask_stream(model: str, messages: list, **params: Any) -> Any:
        return client.messages.create(model=model, messages=messages, stream=True, **params)

    with ask_stream(model="claude-haiku-4-5", messages=QUESTION, max_tokens=256) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    assert agent.flush()

    a = configured["collector"].one("chat claude-haiku-4-5").attributes
    assert a["llmpulse.stream.state"] == "abandoned"
    assert a["llmpulse.output.text"] == "Observability"
    # message_start already reported the input side; output_tokens is the running count at that point
    assert a["gen_ai.usage.input_tokens"] == 1042 and a["gen_ai.usage.output_tokens"] == 2
    assert "gen_ai.response.finish_reasons" not in a
    row = _row(ch, configured)
    assert row["FinishReasons"] == [] and row["InputTokens"] == 1042 and row["CostUSD"] > 0
