"""Cached and reasoning tokens, each provider by its own definition: no token charged twice, none missed.

``gen_ai.usage.input_tokens`` holds every input token the call consumed, cached ones included (the OTel GenAI
convention); ``cache_read`` / ``cache_creation`` say how many of them were read from or written to the cache;
``output_tokens`` includes reasoning (``reasoning_output_tokens`` says how many). The providers report this
differently:

* OpenAI (chat, completions, Responses): ``prompt_tokens`` / ``input_tokens`` already include
  ``cached_tokens``; ``completion_tokens`` / ``output_tokens`` already include ``reasoning_tokens``;
* Anthropic: ``input_tokens`` excludes the cache; ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens`` come ON TOP; thinking is inside ``output_tokens``;
* litellm: OpenAI's definition for every provider (it adds Anthropic's cache counts into ``prompt_tokens``
  and reports them in ``prompt_tokens_details.cached_tokens`` / ``cache_creation_tokens``).

The usage blocks below are the providers' documented shapes with non-zero values (the recorded cassettes carry
zeros, except the Responses reasoning recording: 288 output tokens, 9 of them reasoning).
"""

from __future__ import annotations

import pytest
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.enrich.providers import parse_response, parse_stream

PRICES = PriceTable.vendored()


def _charged(model: str, resp) -> float:
    """What the pipeline charges for a parsed response (``span_cost``, as enrichment calls it)."""
    return PRICES.span_cost(
        (model,), resp.input_tokens, resp.output_tokens, resp.cache_read_input_tokens, resp.cache_creation_input_tokens
    )


def test_openai_chat_cached_and_reasoning_tokens_are_inside_the_totals() -> None:
    completion = {
        "object": "chat.completion",
        "model": "o4-mini-2025-04-16",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 1200,
            "total_tokens": 3206,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1024, "audio_tokens": 0},
        },
    }
    resp = parse_response(completion)
    assert (resp.input_tokens, resp.cache_read_input_tokens, resp.cache_creation_input_tokens) == (2006, 1920, None)
    assert (resp.output_tokens, resp.reasoning_output_tokens) == (1200, 1024)
    price = PRICES.lookup("o4-mini")
    expected = (86 * price.input_per_mtok + 1920 * price.cache_read_per_mtok + 1200 * price.output_per_mtok) / 1e6
    assert _charged("o4-mini-2025-04-16", resp) == pytest.approx(expected)


def test_openai_responses_usage_same_definition() -> None:
    response = {
        "object": "response",
        "model": "gpt-5-2025-08-07",
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "done"}]}],
        "usage": {
            "input_tokens": 44,
            "input_tokens_details": {"cached_tokens": 32},
            "output_tokens": 288,
            "output_tokens_details": {"reasoning_tokens": 9},
            "total_tokens": 332,
        },
    }
    resp = parse_response(response)
    assert (resp.input_tokens, resp.cache_read_input_tokens, resp.output_tokens, resp.reasoning_output_tokens) == (
        44,
        32,
        288,
        9,
    )
    price = PRICES.lookup("gpt-5")
    expected = (12 * price.input_per_mtok + 32 * price.cache_read_per_mtok + 288 * price.output_per_mtok) / 1e6
    assert _charged("gpt-5", resp) == pytest.approx(expected)


def test_anthropic_cache_tokens_come_on_top_of_the_input() -> None:
    message = {
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "thinking", "thinking": "..."}, {"type": "text", "text": "323"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 21,
            "cache_creation_input_tokens": 188086,
            "cache_read_input_tokens": 4096,
            "cache_creation": {"ephemeral_5m_input_tokens": 188086, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 393,
        },
    }
    resp = parse_response(message)
    assert resp.input_tokens == 21 + 188086 + 4096, "semconv input: every input token, cached ones included"
    assert (resp.cache_read_input_tokens, resp.cache_creation_input_tokens, resp.output_tokens) == (4096, 188086, 393)
    expected = (21 * 3.0 + 4096 * 0.3 + 188086 * 3.75 + 393 * 15.0) / 1e6  # claude-sonnet-4: each part once
    assert _charged("claude-sonnet-4-20250514", resp) == pytest.approx(expected)


def test_anthropic_stream_usage_message_start_then_cumulative_message_delta() -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-sonnet-4-20250514",
                "role": "assistant",
                "content": [],
                "usage": {
                    "input_tokens": 21,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 4096,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {
                "input_tokens": 21,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 4096,
                "output_tokens": 9,
            },
        },
    ]
    resp = parse_stream(events)
    assert (resp.input_tokens, resp.cache_read_input_tokens, resp.output_tokens) == (4117, 4096, 9)
    assert _charged("claude-sonnet-4", resp) == pytest.approx((21 * 3.0 + 4096 * 0.3 + 9 * 15.0) / 1e6)


def test_litellm_usage_is_openai_shaped_for_every_provider() -> None:
    """litellm's ModelResponse for an Anthropic call with caching (litellm adds the cache counts into prompt_tokens)."""
    response = {
        "object": "chat.completion",
        "model": "claude-sonnet-4-20250514",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "323"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 21 + 188086 + 4096,
            "completion_tokens": 393,
            "total_tokens": 21 + 188086 + 4096 + 393,
            "prompt_tokens_details": {"cached_tokens": 4096, "cache_creation_tokens": 188086, "text_tokens": 21},
            "cache_creation_input_tokens": 188086,
            "cache_read_input_tokens": 4096,
        },
    }
    resp = parse_response(response)
    assert (resp.input_tokens, resp.cache_read_input_tokens, resp.cache_creation_input_tokens) == (192203, 4096, 188086)
    assert _charged("claude-sonnet-4", resp) == pytest.approx(
        (21 * 3.0 + 4096 * 0.3 + 188086 * 3.75 + 393 * 15.0) / 1e6
    )


def test_no_cache_reported_charges_every_input_token_at_the_input_price() -> None:
    resp = parse_response(
        {
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 10},
        }
    )
    assert resp.cache_read_input_tokens is None
    assert _charged("gpt-4o-mini", resp) == pytest.approx((1000 * 0.15 + 10 * 0.6) / 1e6)


def test_a_stream_without_usage_has_no_tokens_and_no_cost() -> None:
    chunks = [
        {
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": "Hi"}}],
        },
        {
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    resp = parse_stream(chunks)
    assert resp.output_text == "Hi" and resp.input_tokens is None and resp.output_tokens is None
    assert _charged("gpt-4o-mini", resp) is None, "unknown, not $0"
