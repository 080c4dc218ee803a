"""Spans that were waiting for their GenAI events when the agent stopped, found again in the store.

A waiting span is stored in ``otel_traces`` (marked ``llmpulse.llm_calls.deferred``) as soon as it is
received; only its ``llm_calls`` row waits, in memory (``join``). After a crash (or a stop whose last
write was refused) such a span has no ``llm_calls`` row. At the next start, once the write-ahead log is
replayed, these spans and their stored events are read back and handed to the join, which writes their
rows as usual. The ids of the spans are the join key, so running this twice writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmpulse.agent.store.rows import datetime64
from llmpulse.agent.store.schema.traces import JOIN_DEFERRED, TRACE_COLUMNS

from .join import ATTRS
from .otlp_logs import GenAIEvent

_EVENT_TIMES = TRACE_COLUMNS.index("Events.Timestamp")
LOOK_BACK_S = 7 * 86_400
MAX_SPANS = 50_000

# otel_traces columns in TRACE_COLUMNS order; times as integer nanoseconds (a DateTime64 read back as a
# Python datetime would lose them)
_SPAN_COLUMNS = """toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind,
    ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name, Events.Attributes,
    Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes"""


def waiting_spans(
    client: Any, database: str, *, look_back_s: int = LOOK_BACK_S, limit: int = MAX_SPANS
) -> list[tuple[list[Any], int, list[GenAIEvent]]]:
    """Deferred spans of the last ``look_back_s`` seconds that have no ``llm_calls`` row, with their events."""
    found = client.query(
        f"SELECT {_SPAN_COLUMNS} FROM {database}.otel_traces"
        " WHERE Timestamp >= now() - toIntervalSecond({look_back:UInt32})"
        " AND SpanAttributes[{mark:String}] = 'true'"
        " ORDER BY Timestamp LIMIT 1 BY TraceId, SpanId LIMIT {limit:UInt32}",
        parameters={"look_back": look_back_s, "mark": JOIN_DEFERRED, "limit": limit},
    ).result_rows
    if not found:
        return []
    traces = sorted({row[1] for row in found})
    written = {
        (trace_id, span_id)
        for trace_id, span_id in client.query(
            f"SELECT TraceId, SpanId FROM {database}.llm_calls WHERE TraceId IN {{traces:Array(String)}}",
            parameters={"traces": traces},
        ).result_rows
    }
    events = _events(client, database, traces)
    items = []
    for values in found:
        key = (values[1], values[2])
        if key not in written:
            row = _row(values)
            items.append((row, int(values[0]), events.get(key, [])))
    return items


def _row(values: Iterable[Any]) -> list[Any]:
    """A stored span as the row the receiver built for it, without the deferral mark."""
    row = list(values)
    row[0] = datetime64(int(row[0]))
    row[_EVENT_TIMES] = [datetime64(int(t)) for t in row[_EVENT_TIMES]]
    attrs = dict(row[ATTRS])
    attrs.pop(JOIN_DEFERRED, None)
    row[ATTRS] = attrs
    return row


def _events(client: Any, database: str, traces: list[str]) -> dict[tuple[str, str], list[GenAIEvent]]:
    rows = client.query(
        f"SELECT TraceId, SpanId, ServiceName, ScopeName, EventName, LogAttributes, Body FROM {database}.otel_logs"
        " WHERE TraceId IN {traces:Array(String)} AND startsWith(EventName, 'gen_ai.') ORDER BY Timestamp",
        parameters={"traces": traces},
    ).result_rows
    events: dict[tuple[str, str], list[GenAIEvent]] = {}
    for trace_id, span_id, service, scope, name, attributes, body in rows:
        events.setdefault((trace_id, span_id), []).append(
            GenAIEvent(trace_id, span_id, service, scope, name, dict(attributes), body)
        )
    return events
