"""One rule names the provider from a model name, wherever a span is built (issue 12)."""

from __future__ import annotations

import pytest
from llmpulse.agent import observe
from llmpulse.agent.enrich.providers import guess_provider, parse_request


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-oss-120b", "openai"),  # the two rules disagreed here before: one rule now
        ("omni-moderation-latest", "openai"),
        ("gpt-4o-mini", "openai"),
        ("o3-mini", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("openai/gpt-oss-20b", "openai"),
        ("claude-haiku-4-5", "anthropic"),
        ("anthropic/claude-3-haiku", "anthropic"),
        ("meta-llama/Llama-3.1-8B-Instruct", None),
        ("omega", None),
        ("", None),
        (None, None),
    ],
)
def test_one_rule_for_request_parsing_and_span_building(configured, model, provider) -> None:
    assert guess_provider(model) == provider
    assert parse_request({"model": model, "messages": []}).provider == provider

    @observe(kind="llm", model=model or None, name="guessed")
    def call() -> str:
        return "ok"  # a reply that names no provider: the span's provider comes from the model name alone

    call()
    from llmpulse import agent

    assert agent.flush(10)
    span = configured["collector"].one("chat" if not model else f"chat {model}")
    assert span.attributes.get("gen_ai.provider.name") == provider
