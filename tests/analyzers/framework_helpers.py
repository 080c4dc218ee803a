"""Test helpers shared by the analyzer tests: a schema'd database and plain llm_calls rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from llmpulse.agent.store.insert import insert_rows
from llmpulse.agent.store.schema import SchemaOptions, apply

# Calls are placed relative to NOW, the start of the current hour: recent, because the tables' TTLs
# (180 days for llm_calls, 30 for content) would let the engine drop older test rows at any moment.
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def create_schema(ch: Any, database: str) -> None:
    apply(ch, SchemaOptions(database=database))


def call_row(
    at: datetime,
    index: int,
    *,
    service: str = "svc",
    model: str = "m1",
    prompt: str = "",
    response: str = "",
    **columns: Any,
) -> dict[str, Any]:
    """One llm_calls row with the columns analyzers use; any other column may be given by name."""
    row: dict[str, Any] = {
        "Timestamp": at,
        "TraceId": f"{index:032x}",
        "SpanId": f"{index:016x}",
        "ServiceName": service,
        "RequestModel": model,
        "Operation": "chat",
        "PromptText": prompt,
        "ResponseText": response,
        "DurationNs": 0,
        "StatusCode": "Unset",
    }
    row.update(columns)
    return row


def insert_calls(ch: Any, database: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows straight into llm_calls (all rows must have the same keys)."""
    insert_rows(ch, database, "llm_calls", rows, settings={})


def spread(start: datetime, end: datetime, n: int) -> list[datetime]:
    """n instants evenly inside [start, end)."""
    step = (end - start) / (n + 1)
    return [start + step * (i + 1) for i in range(n)]


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)
