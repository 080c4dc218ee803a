"""Rollups of LLM calls per session, per user and per trace (migration 7), fed by materialized views from ``llm_calls``.

A month of calls is too much to group on every listing, so three ``AggregatingMergeTree`` tables hold
partial aggregates, one row per (hour, service, session) and (hour, service, user) that merges with the
next; readers finish them with ``-Merge`` combinators (and plain ``sum``/``min``/``max`` for the
``SimpleAggregateFunction`` columns), grouped by session or user. A listing window that does not start
or end on the hour reads its partial hours from ``llm_calls`` itself, so its totals are exact.

- ``llm_sessions``: calls, errors, tokens, cost (NULL when no call had a price), summed duration (for the
  mean), a p95 latency state, first and last seen, the session's user and models;
- ``llm_users``: the same per user, plus a count of distinct sessions;
- ``llm_trace_sessions``: the session and user of each trace. Feedback rows name a trace (and a span),
  not a session, and feedback may be recorded before its call is stored (``feedback()`` inside the
  running call), so feedback is joined to sessions when read, through this table, never at insert
  time. Readers look traces up by ``TraceHash`` (``cityHash64(TraceId)``, the key's first column):
  comparing 8-byte hashes reads and matches a month of traces about three times faster than the ids.

Rows without a session (or user) id are not rolled up. The views fire on every insert into
``llm_calls``, including the rows its own view writes from ``otel_traces``. Migration 7 creates the
tables, fills them from the ``llm_calls`` already stored, then creates the views: apply it while no
writer runs (as ``configure()`` and ``llmpulse agent`` do at start) or the calls stored in between are
missing from the rollups.
"""

from __future__ import annotations

from .model import Column, SchemaOptions, Table, View, column_names, create_table

_ZSTD = "CODEC(ZSTD(1))"
_LOW = "LowCardinality(String)"


def _common_columns() -> tuple[Column, ...]:
    """The measures both rollups carry, in table order (after their key columns)."""
    return (
        Column("Calls", "SimpleAggregateFunction(sum, UInt64)"),
        Column("Errors", "SimpleAggregateFunction(sum, UInt64)"),
        Column("InputTokens", "SimpleAggregateFunction(sum, UInt64)"),
        Column("OutputTokens", "SimpleAggregateFunction(sum, UInt64)"),
        Column("CostUSD", "AggregateFunction(sum, Nullable(Float64))"),
        Column("DurationNs", "SimpleAggregateFunction(sum, UInt64)"),
        Column("DurationP95", "AggregateFunction(quantile(0.95), UInt64)"),
        Column("FirstSeen", "SimpleAggregateFunction(min, DateTime64(9))"),
        Column("LastSeen", "SimpleAggregateFunction(max, DateTime64(9))"),
        Column("Models", "SimpleAggregateFunction(groupUniqArrayArray, Array(String))"),
    )


SESSIONS_DECLARED = (
    Column("Hour", "DateTime", "CODEC(Delta, ZSTD(1))"),
    Column("ServiceName", _LOW),
    Column("SessionId", "String", _ZSTD),
    Column("UserId", "SimpleAggregateFunction(max, String)", _ZSTD),
    *_common_columns(),
)
USERS_DECLARED = (
    Column("Hour", "DateTime", "CODEC(Delta, ZSTD(1))"),
    Column("ServiceName", _LOW),
    Column("UserId", "String", _ZSTD),
    Column("Sessions", "AggregateFunction(uniq, Nullable(String))"),
    *_common_columns(),
)
TRACE_SESSIONS_DECLARED = (
    Column("Day", "Date"),
    Column("TraceHash", "UInt64"),
    Column("TraceId", "String", _ZSTD),
    Column("ServiceName", _LOW),
    Column("SessionId", "SimpleAggregateFunction(max, String)", _ZSTD),
    Column("UserId", "SimpleAggregateFunction(max, String)", _ZSTD),
    Column("FirstSeen", "SimpleAggregateFunction(min, DateTime64(9))"),
)
SESSIONS_COLUMNS = column_names(SESSIONS_DECLARED)
USERS_COLUMNS = column_names(USERS_DECLARED)

_ROLLUP_REST = """
) ENGINE = {{engine}}
PARTITION BY toDate(Hour)
ORDER BY (ServiceName, {key}, Hour)
{{ttl}}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

SESSIONS_DDL = create_table(SESSIONS_DECLARED, _ROLLUP_REST.format(key="SessionId"))
USERS_DDL = create_table(USERS_DECLARED, _ROLLUP_REST.format(key="UserId"))
TRACE_SESSIONS_DDL = create_table(
    TRACE_SESSIONS_DECLARED,
    """
) ENGINE = {engine}
PARTITION BY Day
ORDER BY (TraceHash, TraceId, ServiceName)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1""",
)

# The views and the backfill read llm_calls through a projection under other names: ClickHouse resolves
# an alias anywhere in a query, so ``sum(DurationNs) AS DurationNs`` would turn a later
# ``quantileState(0.95)(DurationNs)`` into an aggregate of an aggregate.
_CALLS = """(SELECT Timestamp AS t, ServiceName, SessionId, UserId, SessionId AS session, UserId AS user,
        StatusCode AS status, InputTokens AS input_tokens, OutputTokens AS output_tokens, CostUSD AS cost,
        DurationNs AS duration, RequestModel AS model, TraceId
    FROM "{{db}}"."{{src}}" WHERE {where})"""

MEASURES_SQL = """count() AS Calls,
    countIf(status = 'Error') AS Errors,
    sum(ifNull(input_tokens, 0)) AS InputTokens,
    sum(ifNull(output_tokens, 0)) AS OutputTokens,
    sumState(cost) AS CostUSD,
    sum(duration) AS DurationNs,
    quantileState(0.95)(duration) AS DurationP95,
    min(t) AS FirstSeen,
    max(t) AS LastSeen,
    groupUniqArray(model) AS Models"""

SESSIONS_SELECT = f"""SELECT
    toStartOfHour(t) AS Hour,
    ServiceName,
    SessionId,
    max(user) AS UserId,
    {MEASURES_SQL}
FROM {_CALLS.format(where="SessionId != ''")}
GROUP BY Hour, ServiceName, SessionId"""

USERS_SELECT = f"""SELECT
    toStartOfHour(t) AS Hour,
    ServiceName,
    UserId,
    uniqState(nullIf(session, '')) AS Sessions,
    {MEASURES_SQL}
FROM {_CALLS.format(where="UserId != ''")}
GROUP BY Hour, ServiceName, UserId"""

TRACE_SESSIONS_SELECT = f"""SELECT
    toDate(min(t)) AS Day,
    cityHash64(TraceId) AS TraceHash,
    TraceId,
    ServiceName,
    max(session) AS SessionId,
    max(user) AS UserId,
    min(t) AS FirstSeen
FROM {_CALLS.format(where="SessionId != '' OR UserId != ''")}
GROUP BY TraceId, ServiceName"""

_VIEW_HEAD = 'CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{table}" {cluster}\nTO "{db}"."{dst}"\nAS '


def _calls_days(options: SchemaOptions) -> int:
    return options.calls_ttl_days


LLM_SESSIONS = Table(
    "llm_sessions",
    SESSIONS_DDL,
    engine="AggregatingMergeTree",
    ttl_column="Hour",
    ttl_days=_calls_days,
)
LLM_USERS = Table("llm_users", USERS_DDL, engine="AggregatingMergeTree", ttl_column="Hour", ttl_days=_calls_days)
LLM_TRACE_SESSIONS = Table(
    "llm_trace_sessions",
    TRACE_SESSIONS_DDL,
    engine="AggregatingMergeTree",
    ttl_column="toDateTime(Day)",
    ttl_days=_calls_days,
)

TABLES: tuple[Table, ...] = (LLM_SESSIONS, LLM_USERS, LLM_TRACE_SESSIONS)
"""The rollup tables, created first."""

_SELECTS = ((LLM_SESSIONS, SESSIONS_SELECT), (LLM_USERS, USERS_SELECT), (LLM_TRACE_SESSIONS, TRACE_SESSIONS_SELECT))

VIEWS: tuple[View, ...] = tuple(
    View(f"{table.name}_mv", _VIEW_HEAD + select, "llm_calls", table.name) for table, select in _SELECTS
)
"""The views that keep them current, created after the backfill."""


def backfill(options: SchemaOptions) -> list[str]:
    """``INSERT ... SELECT`` statements that roll up the calls already stored (on a cluster through the
    ``Distributed`` tables: one statement covers every shard)."""
    db = options.database
    statements = []
    for table, select in _SELECTS:
        columns = ", ".join(column_names(_DECLARED[table.name]))
        statements.append(f'INSERT INTO "{db}"."{table.name}" ({columns})\n{select.format(db=db, src="llm_calls")}')
    return statements


_DECLARED = {
    "llm_sessions": SESSIONS_DECLARED,
    "llm_users": USERS_DECLARED,
    "llm_trace_sessions": TRACE_SESSIONS_DECLARED,
}


NEGATIVE_SCORE_AT_MOST = 0.0
"""A feedback score at or below this is negative (a thumbs-down recorded as 0 or -1)."""


def feedback_on_calls(calls: str, feedback: str = "feedback") -> str:
    """SQL of the feedback rows on a set of calls, each with the call it is about.

    ``calls`` is a subquery giving ``TraceId``, ``SpanId`` and ``Timestamp`` of ``llm_calls`` rows;
    ``feedback`` names the feedback table (qualified or not). Feedback names a trace and, optionally, a
    span: on an LLM call's span it is about that call; on any other span of the trace (a chain around
    the call, as ``feedback(**current_ids())`` inside a pipeline gives) or on the trace as a whole, it is
    about the trace's last LLM call, the answer its user saw. Columns: ``TraceId``, ``SpanId`` (of the
    call), ``FeedbackTime``, ``FeedbackId``, ``Name``, ``Score``, ``Label``, ``Comment``, ``Source``.
    """
    return f"""SELECT f.TraceId AS TraceId, if(has(t.spans, f.SpanId), f.SpanId, t.last_span) AS SpanId,
    f.Timestamp AS FeedbackTime, f.FeedbackId AS FeedbackId, f.Name AS Name, f.Score AS Score,
    f.Label AS Label, f.Comment AS Comment, f.Source AS Source
FROM {feedback} AS f
INNER JOIN (
    SELECT TraceId, groupArray(SpanId) AS spans, argMax(SpanId, Timestamp) AS last_span
    FROM ({calls}) GROUP BY TraceId
) AS t ON f.TraceId = t.TraceId"""
