"""Shared by the tests that replay recorded cassettes through instrumented clients: fixtures and row readers.

Each test module imports the fixtures it uses (pytest finds fixtures in a module's namespace).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llmpulse.agent import instrument, uninstrument
from llmpulse.agent.enrich.prices import PriceTable

from llmpulse import agent

PRICES = PriceTable.default()  # what the pipeline prices with: vendored, then litellm's list when installed


@pytest.fixture
def recorded(configured: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The SDK configured on a fresh chDB database and the libraries the test module's ``INSTRUMENT`` names
    (default: openai and anthropic) instrumented, with its ``INSTRUMENT_OPTIONS``; undone afterwards."""
    names = getattr(request.module, "INSTRUMENT", ("openai", "anthropic"))
    options = getattr(request.module, "INSTRUMENT_OPTIONS", {})
    instrument(*names, **options)
    try:
        yield configured
    finally:
        uninstrument()


def rows(ch: Any, configured: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``llm_calls`` row of the test's database, oldest first (flushes first)."""
    assert agent.flush()
    return list(ch.query(f"SELECT * FROM {configured['database']}.llm_calls ORDER BY Timestamp").named_results())


def one_row(ch: Any, configured: dict[str, Any]) -> dict[str, Any]:
    """The only ``llm_calls`` row: one call, one span."""
    found = rows(ch, configured)
    assert len(found) == 1, f"one call, one row: got {[(r['SpanName'], r['ParentSpanId']) for r in found]}"
    assert len(configured["collector"].spans) == 1, [s.name for s in configured["collector"].spans]
    return found[0]


def one_span(configured: dict[str, Any]) -> Any:
    spans = configured["collector"].spans
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def cost(model: str, inp: int, out: int, read: int | None = None, write: int | None = None) -> float:
    """The cost the pipeline's price table gives (the test fails when the model is not priced)."""
    value = PRICES.span_cost((model,), inp, out, read, write)
    assert value is not None and value > 0, f"{model} is not priced"
    return value


def output_parts(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for message in json.loads(row["OutputMessages"]) for part in message["parts"]]


USAGE = r'"usage":\s*\{(?:[^{}]|\{[^{}]*\})*\}'  # a usage object with one level of nested objects


def replace_usage(*usages: dict[str, Any]) -> Callable[[str], str]:
    """A cassette ``rewrite``: the recorded ``"usage": {...}`` blocks replaced, in order, by ``usages``
    (the last one repeats), for a test that needs values the recording does not carry."""

    def rewrite(body: str) -> str:
        seen = 0

        def one(_: re.Match[str]) -> str:
            nonlocal seen
            usage = usages[min(seen, len(usages) - 1)]
            seen += 1
            return '"usage":' + json.dumps(usage, separators=(",", ":"))

        replaced = re.sub(USAGE, one, body)
        assert seen, "the recorded body has no usage block to replace"
        return replaced

    return rewrite
