"""Sessions and users: read the rollups (``llm_sessions``, ``llm_users``) for a window, and a session's calls.

The rollups hold one partial aggregate per hour; a window's whole hours come from them and its partial
first and last hours from ``llm_calls``, so the figures are exact for any window. Feedback is joined
when read, through ``llm_trace_sessions`` (a feedback row names a trace, not a session). Every value a
user types reaches the SQL as a bound parameter; the sort order is picked from a fixed table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from .contract import feedback_on_calls_sql, negative_score_at_most

Kind = Literal["session", "user"]

SORTS: dict[str, str] = {
    "cost": "cost_usd DESC NULLS LAST, calls DESC",
    "errors": "errors DESC, calls DESC",
    "feedback": "mean_score ASC NULLS LAST, negative DESC, last_seen DESC",
    "calls": "calls DESC, last_seen DESC",
    "tokens": "tokens DESC, calls DESC",
    "latency": "p95_s DESC, calls DESC",
    "last-seen": "last_seen DESC",
}
"""``--sort`` keys and their ORDER BY (then service and id, so ties list the same way every time)."""

_TABLE = {"session": ("llm_sessions", "SessionId"), "user": ("llm_users", "UserId")}

# Per kind: the rollup side's and the raw side's extra column (a state to merge), and how it is merged.
_EXTRA = {
    "session": ("toString(UserId) AS extra", "max(UserId) AS extra", "max(extra) AS user_id"),
    "user": ("Sessions AS extra", "uniqState(nullIf(SessionId, '')) AS extra", "uniqMerge(extra) AS sessions"),
}

# The rollup's rows as they are (one level of merging, in the listing); the raw side's groups alike.
_ROLLUP_SIDE = """SELECT ServiceName, {key} AS id, {extra},
        toUInt64(Calls) AS calls, toUInt64(Errors) AS errors, toUInt64(InputTokens) AS input_tokens,
        toUInt64(OutputTokens) AS output_tokens, CostUSD AS cost, toUInt64(DurationNs) AS duration,
        DurationP95 AS p95, toDateTime64(FirstSeen, 9) AS first_seen, toDateTime64(LastSeen, 9) AS last_seen,
        CAST(Models, 'Array(String)') AS models
    FROM {{db:Identifier}}.{table}
    WHERE Hour >= toDateTime({{from_hour:Int64}}, 'UTC') AND Hour < toDateTime({{to_hour:Int64}}, 'UTC') {service}"""

_RAW_SIDE = """SELECT ServiceName, {key} AS id, {extra},
        count() AS calls, countIf(StatusCode = 'Error') AS errors, sum(ifNull(InputTokens, 0)) AS input_tokens,
        sum(ifNull(OutputTokens, 0)) AS output_tokens, sumState(CostUSD) AS cost, sum(DurationNs) AS duration,
        quantileState(0.95)(DurationNs) AS p95, min(Timestamp) AS first_seen, max(Timestamp) AS last_seen,
        groupUniqArray(CAST(RequestModel, 'String')) AS models
    FROM {{db:Identifier}}.llm_calls
    WHERE {key} != '' AND {edges} {service}
    GROUP BY ServiceName, id"""

_CALLS_IN_WINDOW = (
    "Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp <= fromUnixTimestamp64Nano({end_ns:Int64})"
)
_EDGES = (
    f"{_CALLS_IN_WINDOW} AND NOT (Timestamp >= toDateTime({{from_hour:Int64}}, 'UTC')"
    " AND Timestamp < toDateTime({to_hour:Int64}, 'UTC'))"
)

_FEEDBACK_SIDE = """SELECT t.ServiceName AS fb_service, t.id AS fb_id, count() AS feedback, avg(f.Score) AS fb_mean,
        countIf(f.Score <= {negative}) AS fb_negative, max(f.Timestamp) AS fb_last
    FROM {{db:Identifier}}.feedback AS f
    INNER JOIN (
        SELECT TraceId, ServiceName, max({key}) AS id FROM {{db:Identifier}}.llm_trace_sessions
        WHERE TraceHash IN (SELECT cityHash64(TraceId) FROM {{db:Identifier}}.feedback
                            WHERE Timestamp >= fromUnixTimestamp64Nano({{start_ns:Int64}}))
        GROUP BY TraceId, ServiceName
        HAVING id != '' AND min(FirstSeen) >= fromUnixTimestamp64Nano({{start_ns:Int64}})
           AND min(FirstSeen) <= fromUnixTimestamp64Nano({{end_ns:Int64}})
    ) AS t ON f.TraceId = t.TraceId
    WHERE f.Timestamp >= fromUnixTimestamp64Nano({{start_ns:Int64}}) {service_t}
    GROUP BY fb_service, fb_id"""

LISTING_SQL = """SELECT r.ServiceName AS service, r.id AS id, {extra_out}, r.calls AS calls, r.errors AS errors,
    r.input_tokens + r.output_tokens AS tokens, r.input_tokens AS input_tokens, r.output_tokens AS output_tokens,
    r.cost_usd AS cost_usd, r.duration / r.calls / 1e9 AS mean_s, r.p95_ns / 1e9 AS p95_s,
    fb.feedback AS feedback, if(fb.feedback > 0, fb.fb_mean, NULL) AS mean_score, fb.fb_negative AS negative,
    r.first_seen AS first_seen, r.last_seen AS last_seen, r.models AS models
FROM (
    SELECT ServiceName, id, {extra_merge}, sum(calls) AS calls, sum(errors) AS errors,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sumMerge(cost) AS cost_usd,
        sum(duration) AS duration, quantileMerge(0.95)(p95) AS p95_ns, min(first_seen) AS first_seen,
        max(last_seen) AS last_seen, arraySort(groupUniqArrayArray(models)) AS models
    FROM ({rollup} UNION ALL {raw})
    GROUP BY ServiceName, id
) AS r
LEFT JOIN ({feedback}) AS fb ON fb.fb_service = r.ServiceName AND fb.fb_id = r.id
ORDER BY {order}, service, id
LIMIT {{limit:UInt32}}"""


@dataclass(frozen=True)
class Window:
    """A listing window ``[start, end]``, and the whole hours inside it that the rollups answer."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, length: timedelta, end: datetime | None = None) -> Window:
        stop = end or datetime.now(timezone.utc)
        return cls(stop - length, stop)

    @property
    def hours(self) -> tuple[int, int]:
        """Epoch seconds of the first whole hour and of the hour the window ends in (empty when equal)."""
        first = _epoch(self.start)
        first_hour = -(-first // 3600) * 3600
        last_hour = _epoch(self.end) // 3600 * 3600
        return first_hour, max(first_hour, last_hour)

    def parameters(self) -> dict[str, Any]:
        from_hour, to_hour = self.hours
        return {
            "start_ns": _epoch_ns(self.start),
            "end_ns": _epoch_ns(self.end),
            "from_hour": from_hour,
            "to_hour": to_hour,
        }


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _epoch_ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def feedback_side(kind: Kind, service: str | None = None) -> str:
    """SQL of the feedback count, mean score and negatives per session or user of the window."""
    return _FEEDBACK_SIDE.format(
        key=_TABLE[kind][1],
        negative=negative_score_at_most(),
        service_t="AND t.ServiceName = {service:String}" if service is not None else "",
    )


def listing_sql(kind: Kind, sort: str, service: str | None) -> str:
    """The SQL of a listing: placeholders for every value, the sort from :data:`SORTS`."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    table, key = _TABLE[kind]
    rollup_extra, raw_extra, extra_merge = _EXTRA[kind]
    only = "AND ServiceName = {service:String}" if service is not None else ""
    rollup = _ROLLUP_SIDE.format(key=key, extra=rollup_extra, table=table, service=only)
    raw = _RAW_SIDE.format(key=key, extra=raw_extra, edges=_EDGES, service=only)
    feedback = feedback_side(kind, service)
    extra_out = "r.user_id AS user_id" if kind == "session" else "r.sessions AS sessions"
    return LISTING_SQL.format(
        extra_out=extra_out, extra_merge=extra_merge, rollup=rollup, raw=raw, feedback=feedback, order=SORTS[sort]
    )


def list_rollup(
    client: Any,
    database: str,
    kind: Kind,
    window: Window,
    *,
    sort: str = "cost",
    limit: int = 20,
    service: str | None = None,
) -> list[dict[str, Any]]:
    """The top sessions or users of ``window`` by ``sort``, at most ``limit``, as dicts of the listing's columns."""
    parameters = {"db": database, "limit": limit, **window.parameters()}
    if service is not None:
        parameters["service"] = service
    result = client.query(listing_sql(kind, sort, service), parameters=parameters)
    return list(result.named_results())


def why_empty(client: Any, database: str, kind: Kind, window: Window, service: str | None = None) -> str:
    """Why a listing of ``window`` is empty: no calls at all, or calls without a session (user) id."""
    key = _TABLE[kind][1]
    only = " AND ServiceName = {service:String}" if service is not None else ""
    calls, keyed = client.query(
        f"SELECT count(), countIf({key} != '') FROM {{db:Identifier}}.llm_calls WHERE {_CALLS_IN_WINDOW}{only}",
        parameters={"db": database, "service": service or "", **window.parameters()},
    ).result_rows[0]
    scope = f" of service {service!r}" if service is not None else ""
    if not calls:
        return f"no LLM calls{scope} in this window"
    field = "session_id" if kind == "session" else "user_id"
    return (
        f"{calls} LLM call(s){scope} in this window, none with a {kind} id"
        f" (set one with attributes({field}=...) or update_current_span({field}=...))"
        if not keyed
        else f"{keyed} call(s) with a {kind} id in this window, but none in the rollup yet"
    )


SESSION_CALLS_SQL = """SELECT c.Timestamp AS time, c.ServiceName AS service, c.UserId AS user_id,
    c.TraceId AS trace_id, c.SpanId AS span_id, c.RequestModel AS model, c.StatusCode AS status,
    c.ErrorType AS error_type, c.DurationNs / 1e9 AS duration_s, c.TimeToFirstTokenSeconds AS ttft_s,
    c.InputTokens AS input_tokens, c.OutputTokens AS output_tokens, c.CostUSD AS cost_usd,
    fb.records AS feedback, if(fb.records > 0, fb.mean_score, NULL) AS score, fb.labels AS labels,
    c.PromptText AS prompt, c.ResponseText AS response
FROM {{db:Identifier}}.llm_calls AS c
LEFT JOIN (
    SELECT TraceId, SpanId, count() AS records, avg(Score) AS mean_score, groupArrayIf(Label, Label != '') AS labels
    FROM ({feedback}) GROUP BY TraceId, SpanId
) AS fb ON fb.TraceId = c.TraceId AND fb.SpanId = c.SpanId
WHERE {calls_filter}
ORDER BY c.Timestamp, c.SpanId
LIMIT {{limit:UInt32}}"""


def _session_filter(alias: str, service: str | None) -> str:
    """The calls of one session between its first and last call (bounds from the rollup)."""
    prefix = f"{alias}." if alias else ""
    condition = (
        f"{prefix}SessionId = {{session:String}} AND {prefix}Timestamp >= fromUnixTimestamp64Nano({{first:Int64}})"
        f" AND {prefix}Timestamp <= fromUnixTimestamp64Nano({{last:Int64}})"
    )
    return condition + (f" AND {prefix}ServiceName = {{service:String}}" if service is not None else "")


def session_bounds(client: Any, database: str, session: str, service: str | None = None) -> tuple[int, int] | None:
    """Epoch nanoseconds of the first and last call of a session, from its rollup (a few rows); None if unknown."""
    only = " AND ServiceName = {service:String}" if service is not None else ""
    row = client.query(
        "SELECT count(), toUnixTimestamp64Nano(min(FirstSeen)), toUnixTimestamp64Nano(max(LastSeen))"
        f" FROM {{db:Identifier}}.llm_sessions WHERE SessionId = {{session:String}}{only}",
        parameters={"db": database, "session": session, "service": service or ""},
    ).result_rows[0]
    return (int(row[1]), int(row[2])) if row[0] else None


def session_calls(
    client: Any, database: str, session: str, *, service: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The calls of one session in time order, with the feedback each got; empty when the session is unknown.

    Its first and last call come from the rollup, so ``llm_calls`` is read over those days only.
    """
    bounds = session_bounds(client, database, session, service)
    if bounds is None:
        return []
    calls = f"SELECT TraceId, SpanId, Timestamp FROM {{db:Identifier}}.llm_calls WHERE {_session_filter('', service)}"
    feedback = feedback_on_calls_sql(calls, "{db:Identifier}.feedback")
    sql = SESSION_CALLS_SQL.format(feedback=feedback, calls_filter=_session_filter("c", service))
    parameters = {
        "db": database,
        "session": session,
        "first": bounds[0],
        "last": bounds[1],
        "limit": limit,
        "service": service or "",
    }
    return list(client.query(sql, parameters=parameters).named_results())
