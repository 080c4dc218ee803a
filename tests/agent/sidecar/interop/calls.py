"""The calls every interop client makes, and what ``llm_calls`` must hold for them.

Each instrumentation package instruments a real ``openai`` client whose HTTP calls are answered in
process with recorded bodies (``provider_fakes``): one plain chat completion and one streamed one.
"""

from __future__ import annotations

from typing import Any

from llmpulse.agent.enrich.prices import PriceTable

from tests.agent.provider_fakes import OPENAI_CHAT_TEXT, OPENAI_STREAM_TEXT, openai_client

PLAIN_QUESTION = "What is the capital of France?"
STREAM_QUESTION = "Why is the sky blue?"

# What the recorded bodies say (tests/fixtures/providers/openai_chat_completion.json, openai_chat_stream.sse)
PLAIN = {
    "model": "o4-mini-2025-04-16",
    "input": 1843,
    "output": 212,
    "cache_read": 1536,
    "prompt": PLAIN_QUESTION,
    "response": OPENAI_CHAT_TEXT,
}
STREAM = {
    "model": "gpt-4o-mini-2024-07-18",
    "input": 19,
    "output": 19,
    "cache_read": 0,
    "prompt": STREAM_QUESTION,
    "response": OPENAI_STREAM_TEXT,
}

LLM_CALLS_QUERY = (
    "SELECT RequestModel, ResponseModel, Provider, Operation, Stream, Temperature, MaxTokens, InputTokens,"
    " OutputTokens, CacheReadInputTokens, CostUSD, PromptText, ResponseText, TimeToFirstTokenSeconds, InputMessages,"
    " OutputMessages, FinishReasons, DurationNs FROM {database}.llm_calls WHERE ServiceName = {{service:String}}"
    " ORDER BY Timestamp"
)


def make_calls() -> None:
    """The plain call, then the streamed one, through a real openai client over the fake transport."""
    client = openai_client("openai_chat_completion.json")
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": PLAIN_QUESTION},
        ],
        temperature=0.3,
        max_tokens=50,
    )
    client = openai_client("openai_chat_stream.sse")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": STREAM_QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass


def read_calls(ch: Any, database: str, service: str) -> list[dict[str, Any]]:
    result = ch.query(LLM_CALLS_QUERY.format(database=database), parameters={"service": service})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def expected_cost(call: dict[str, Any]) -> float | None:
    return PriceTable.vendored().span_cost(
        (call["model"], "gpt-4o-mini"), call["input"], call["output"], call["cache_read"]
    )


def assert_calls(
    rows: list[dict[str, Any]], *, ttft: bool = True, cache_read: bool = True, stream_flag: bool = True
) -> None:
    """The two calls, with model, tokens, cost, prompt and response text; for the stream, the stream flag and
    time to first token (unless the instrumentation records none: ``stream_flag``, ``ttft`` false)."""
    assert len(rows) == 2, rows
    plain, stream = rows
    for row, call in ((plain, PLAIN), (stream, STREAM)):
        assert row["ResponseModel"] == call["model"]
        assert row["RequestModel"] in ("gpt-4o-mini", call["model"])
        assert row["Provider"] == "openai"
        assert row["Operation"] == "chat"
        assert (row["InputTokens"], row["OutputTokens"]) == (call["input"], call["output"])
        if cache_read:
            assert row["CacheReadInputTokens"] == call["cache_read"]
        assert row["CostUSD"] == expected_cost(call if cache_read else {**call, "cache_read": None})
        assert row["PromptText"] == call["prompt"]
        assert row["ResponseText"] == call["response"]
        assert row["DurationNs"] > 0
    assert not plain["Stream"] and stream["Stream"] == stream_flag
    assert (plain["Temperature"], plain["MaxTokens"]) == (0.3, 50)
    assert plain["TimeToFirstTokenSeconds"] is None
    if ttft:
        ttft_s = stream["TimeToFirstTokenSeconds"]
        assert ttft_s is not None and 0 < ttft_s <= stream["DurationNs"] / 1e9, (ttft_s, stream["DurationNs"])
