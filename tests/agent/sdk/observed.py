"""Shared by the end-to-end tests of observed clients: the rows they leave, the cost they carry, a stream cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from llmpulse.agent.enrich.prices import PriceTable

from llmpulse import agent
from tests.agent.provider_fakes import (
    FIXTURES_DIR,
    FixtureServer,
)

PRICES = PriceTable.vendored()
QUESTION = [{"role": "user", "content": "Capital of France?"}]
LOGPROBS_TEXT = "Paris is the capital of France."


def _rows(ch: Any, configured: dict[str, Any]) -> list[dict[str, Any]]:
    return list(ch.query(f"SELECT * FROM {configured['database']}.llm_calls ORDER BY Timestamp").named_results())


def _row(ch: Any, configured: dict[str, Any]) -> dict[str, Any]:
    rows = _rows(ch, configured)
    if len(rows) != 1:
        raw = ch.query(f"SELECT SpanName, StatusCode FROM {configured['database']}.otel_traces").result_rows
        raise AssertionError(f"expected one llm_calls row, got {len(rows)}; otel_traces: {raw}; {agent.stats()}")
    return rows[0]


def _text(chunks: list[Any]) -> str:
    """The text of OpenAI chat chunks, as the app would assemble it."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _assert_cost(
    span: Any, row: dict[str, Any], model: str, inp: int, out: int, read: int | None = None, write: int | None = None
) -> None:
    """Span and row carry the cost the vendored price table gives for these token counts."""
    expected = PRICES.cost(model, inp, out, read, write)
    assert expected is not None and expected > 0
    assert span.attributes["llmpulse.cost.usd"] == pytest.approx(expected)
    assert row["CostUSD"] == pytest.approx(expected)


class _EventsThenReset(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A response body that yields some SSE events, then fails as a dropped connection does."""

    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        yield from self._events
        raise httpx2.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event
        raise httpx2.ReadError("connection reset by peer")


class _ResetMidStream(FixtureServer):
    """Serves the first ``keep`` SSE events of a recorded stream, then the connection drops."""

    def __init__(self, fixture: str, keep: int) -> None:
        super().__init__(fixture)
        self.keep = keep

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        super().__call__(request)  # records the request
        events = [e + b"\n\n" for e in (FIXTURES_DIR / self.fixtures[0]).read_bytes().split(b"\n\n") if e]
        body = _EventsThenReset(events[: self.keep])
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=body)
