"""``instrument("litellm")``: ``litellm.completion`` / ``acompletion`` on litellm's own ``mock_response`` (no
network), streams included, and a call litellm makes through an instrumented openai client (one span).
"""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm's import must not fetch its price map
litellm = pytest.importorskip("litellm", reason="the litellm integration runs the real litellm (mock_response)")

from llmpulse import agent  # noqa: E402
from tests.agent.integrations.cassettes import Cassette, openai_client  # noqa: E402
from tests.agent.integrations.recorded import cost, one_row, one_span, recorded, rows  # noqa: E402

INSTRUMENT = ("litellm", "openai")
HI = [{"role": "user", "content": "hi"}]
__all__ = ["recorded"]
# litellm's own models trigger these in pydantic (schema building, attribute access): not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore:Items? .* using the `ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings(r"ignore:Accessing the 'model_\w+' attribute on the instance is deprecated"),
]


def test_a_completion_is_one_llm_span_with_provider_model_tokens_and_cost(recorded, ch) -> None:
    response = litellm.completion("gpt-4o-mini", HI, mock_response="Hello there", temperature=0.2)
    assert response.choices[0].message.content == "Hello there"
    row = one_row(ch, recorded)
    assert (row["Provider"], row["RequestModel"], row["Temperature"]) == ("openai", "gpt-4o-mini", 0.2)
    usage = response.usage
    assert (row["InputTokens"], row["OutputTokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert row["CostUSD"] == pytest.approx(cost("gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens))
    assert row["PromptText"] == "hi" and row["ResponseText"] == "Hello there" and row["FinishReasons"] == ["stop"]


def test_the_provider_prefix_names_the_provider_and_leaves_the_model(recorded, ch) -> None:
    litellm.completion(model="anthropic/claude-sonnet-4-20250514", messages=HI, mock_response="Hi")
    litellm.completion(model="deepseek/deepseek-chat", messages=HI, mock_response="Hi")
    litellm.completion(model="my-model", custom_llm_provider="groq", messages=HI, mock_response="Hi")
    found = rows(ch, recorded)
    assert [(r["Provider"], r["RequestModel"]) for r in found] == [
        ("anthropic", "claude-sonnet-4-20250514"),
        ("deepseek", "deepseek-chat"),
        ("groq", "my-model"),
    ]
    assert found[0]["CostUSD"] == pytest.approx(
        cost("claude-sonnet-4-20250514", found[0]["InputTokens"], found[0]["OutputTokens"])
    )


def test_a_stream_ends_its_span_with_the_text(recorded, ch) -> None:
    stream = litellm.completion(model="gpt-4o-mini", messages=HI, mock_response="Hello streamed world", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello streamed world"
    row = one_row(ch, recorded)
    assert row["ResponseText"] == text and row["Stream"] is True and row["FinishReasons"] == ["stop"]
    assert one_span(recorded).attributes["llmpulse.stream.state"] == "completed"
    assert row["OutputTokens"] is None and row["CostUSD"] is None, "litellm's mock stream reports no usage"
    assert agent.stats().streams_without_usage == 1


def test_a_stream_with_usage_and_a_stream_left_early(recorded, ch) -> None:
    stream = litellm.completion(
        model="gpt-4o-mini",
        messages=HI,
        mock_response="Hello with usage",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    early = litellm.completion(model="gpt-4o-mini", messages=HI, mock_response="Never read to the end", stream=True)
    first = next(iter(early))
    early.close()
    complete, left = rows(ch, recorded)
    assert complete["OutputTokens"] == chunks[-1].usage.completion_tokens and complete["CostUSD"] > 0
    assert left["ResponseText"] == first.choices[0].delta.content and left["OutputTokens"] is None
    states = [s.attributes["llmpulse.stream.state"] for s in recorded["collector"].spans]
    assert states == ["completed", "abandoned"]


def test_acompletion_and_its_stream(recorded, ch) -> None:
    async def run() -> list[str]:
        response = await litellm.acompletion(model="gpt-4o-mini", messages=HI, mock_response="async hello")
        stream = await litellm.acompletion(model="gpt-4o-mini", messages=HI, mock_response="async stream", stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return [response.choices[0].message.content, streamed]

    texts = asyncio.run(run())
    found = rows(ch, recorded)
    assert [r["ResponseText"] for r in found] == texts == ["async hello", "async stream"]
    assert len(recorded["collector"].spans) == 2, "acompletion is one span, not one more for the completion inside"


def test_an_error_is_recorded_and_raised_unchanged(recorded, ch) -> None:
    with pytest.raises(litellm.exceptions.InternalServerError):
        litellm.completion(model="gpt-4o-mini", messages=HI, mock_response=Exception("boom"))
    row = one_row(ch, recorded)
    assert row["StatusCode"] == "Error" and row["ErrorType"] == "InternalServerError"


def test_through_the_instrumented_openai_client_it_is_one_span(recorded, ch) -> None:
    cassette = Cassette("openai/test_chat_completion_with_content.yaml")
    question = [{"role": "user", "content": "Say this is a test"}]
    response = litellm.completion(model="openai/gpt-4o-mini", messages=question, client=openai_client(cassette))
    assert response.choices[0].message.content == "This is a test." and len(cassette.requests) == 1
    row = one_row(ch, recorded)  # the openai client call inside is folded into the litellm span
    assert (row["Provider"], row["RequestModel"], row["InputTokens"], row["OutputTokens"]) == (
        "openai",
        "gpt-4o-mini",
        12,
        5,
    )
    assert row["ResponseText"] == "This is a test."


def test_a_recorded_stream_through_litellm_and_the_openai_client(recorded, ch) -> None:
    cassette = Cassette("openai/test_chat_completion_streaming.yaml")
    question = [{"role": "user", "content": "Say this is a test"}]
    stream = litellm.completion(
        model="gpt-4",
        messages=question,
        client=openai_client(cassette),
        stream=True,
        stream_options={"include_usage": True},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "This is a test."
    row = one_row(ch, recorded)
    # gpt-4 is not in the vendored table: litellm's bundled list prices it
    assert (row["InputTokens"], row["OutputTokens"]) == (12, 5) and row["CostUSD"] == pytest.approx(
        cost("gpt-4", 12, 5)
    )


def test_stream_usage_asks_litellm_streams_for_usage(configured, ch) -> None:
    agent.instrument("litellm", stream_usage=True)
    try:
        stream = litellm.completion(model="gpt-4o-mini", messages=HI, mock_response="counted", stream=True)
        list(stream)
    finally:
        agent.uninstrument()
    row = one_row(ch, configured)
    assert row["OutputTokens"] is not None and row["CostUSD"] > 0
    assert agent.stats().streams_without_usage == 0


def test_uninstrument_restores_litellm(configured) -> None:
    original = litellm.completion
    agent.instrument("litellm")
    assert litellm.completion is not original
    agent.uninstrument("litellm")
    assert litellm.completion is original
    litellm.completion(model="gpt-4o-mini", messages=HI, mock_response="unrecorded")
    assert agent.flush() and configured["collector"].spans == []
