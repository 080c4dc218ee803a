"""The Sessions and users dashboard: who costs what, which sessions went wrong, and one session's calls in order.

The tables read the hourly rollups (``llm_sessions``, ``llm_users``) with ``-Merge`` combinators, over
the hours the time range touches; feedback is joined through ``llm_trace_sessions``, since a feedback
row names a trace. The last panel shows the calls of the session typed in the Session box, else of the
latest session whose last feedback was negative, else of the most expensive session.
"""

from __future__ import annotations

from llmpulse.dashboards.contract import feedback_on_calls_sql, negative_score_at_most
from llmpulse.dashboards.model import Dashboard, Panel, Row, Variable

from .thresholds import BLUE, ORANGE, RED, steps
from .traces import TRACE_LINK
from .variables import SERVICE, one_of

HOURS = "Hour >= toStartOfHour($__fromTime) AND Hour <= $__toTime"
"""The rollup rows of the hours the time range touches (a range inside one hour still finds its hour)."""
ROLLUP_FILTER = f"{HOURS} AND {one_of('ServiceName', 'service')}"
NEGATIVE = negative_score_at_most()
SESSION_INPUT = "decodeURLComponent('${session:percentencode}')"

SESSION = Variable(
    "session",
    "Session",
    kind="textbox",
    description="Session whose calls to show (default: the latest session ending in negative feedback)",
)

# Feedback in the range, with the session and user of the trace it names.
_FEEDBACK_BY_TRACE = (
    "SELECT f.Timestamp AS at, f.Score AS score, f.Comment AS comment, f.TraceId AS trace_id,"
    " t.ServiceName AS ServiceName, t.session AS session, t.user AS user FROM feedback AS f"
    " INNER JOIN (SELECT TraceId, ServiceName, max(SessionId) AS session, max(UserId) AS user"
    " FROM llm_trace_sessions WHERE TraceHash IN (SELECT cityHash64(TraceId) FROM feedback"
    " WHERE $__timeFilter(Timestamp))"
    " GROUP BY TraceId, ServiceName) AS t ON f.TraceId = t.TraceId WHERE $__timeFilter(f.Timestamp)"
)


def _feedback_per(key: str) -> str:
    """Feedback count, mean score and negatives per session or user (``key``: session | user)."""
    return (
        f"SELECT ServiceName AS fb_service, {key} AS fb_id, count() AS feedback, avg(score) AS fb_mean,"
        f" countIf(score <= {NEGATIVE}) AS negative FROM ({_FEEDBACK_BY_TRACE}) WHERE {key} != ''"
        " GROUP BY fb_service, fb_id"
    )


def _top(key: str, title: str, table: str, id_column: str, kind: str, extra: tuple[str, str]) -> Panel:
    """The top sessions or users (``kind``) of the range by cost, with errors, latency and feedback."""
    name, select = extra
    column = f"{kind}_id"
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT r.id AS {column}, r.service AS service, r.{name} AS {name}, r.calls AS calls,"
            " r.errors AS errors, r.tokens AS tokens, r.cost_usd AS cost_usd, r.p95_s AS p95_s,"
            " fb.feedback AS feedback, if(fb.feedback > 0, fb.fb_mean, NULL) AS mean_score,"
            " fb.negative AS negative, r.last_seen AS last_seen FROM ("
            f"SELECT ServiceName AS service, {id_column} AS id, {select} AS {name},"
            " sum(Calls) AS calls, sum(Errors) AS errors, sum(InputTokens) + sum(OutputTokens) AS tokens,"
            " sumMerge(CostUSD) AS cost_usd, quantileMerge(0.95)(DurationP95) / 1e9 AS p95_s,"
            f" max(LastSeen) AS last_seen FROM {table} WHERE {ROLLUP_FILTER} GROUP BY service, id) AS r"
            f" LEFT JOIN ({_feedback_per(kind)}) AS fb"
            " ON fb.fb_service = r.service AND fb.fb_id = r.id"
            " ORDER BY cost_usd DESC NULLS LAST, calls DESC LIMIT 20"
        ),
        visualization="table",
        columns=(column, "service", name, "calls", "cost_usd", "feedback"),
        description=f"The 20 most expensive {kind}s of the range, with errors, p95 latency and "
        f"human feedback (negative: score <= {NEGATIVE:g}).",
        column_units=(("cost_usd", "currencyUSD"), ("p95_s", "s")),
        width=12,
        height=9,
    )


_NEGATIVE_ENDINGS = (
    "SELECT session, ServiceName AS service, max(user) AS user, count() AS feedback,"
    f" countIf(score <= {NEGATIVE}) AS negative, argMax(score, at) AS last_score, max(at) AS last_feedback,"
    f" argMax(comment, at) AS comment, argMax(trace_id, at) AS trace_id FROM ({_FEEDBACK_BY_TRACE})"
    f" WHERE session != '' AND {one_of('ServiceName', 'service')}"
    f" GROUP BY session, service HAVING last_score <= {NEGATIVE}"
)

# The session the last panel shows: typed in the Session box, else the latest ending in negative
# feedback, else the most expensive of the range.
_PICKED = (
    f"if({SESSION_INPUT} != '', {SESSION_INPUT}, if((SELECT count() FROM ({_NEGATIVE_ENDINGS})) > 0,"
    f" (SELECT argMax(session, last_feedback) FROM ({_NEGATIVE_ENDINGS})),"
    f" (SELECT argMax(SessionId, cost) FROM (SELECT SessionId, sumMerge(CostUSD) AS cost FROM llm_sessions"
    f" WHERE {ROLLUP_FILTER} GROUP BY SessionId))))"
)
_SESSION_CALLS = (
    f"SELECT TraceId, SpanId, Timestamp FROM llm_calls WHERE SessionId = __session AND $__timeFilter(Timestamp)"
    f" AND {one_of('ServiceName', 'service')}"
)

SESSIONS = Dashboard(
    uid="llmpulse-sessions",
    title="llmpulse / Sessions and users",
    description="Sessions and users of the LLM calls (session_id, user_id): cost, errors, latency, human feedback.",
    data_times=("llm_calls.Timestamp", "feedback.Timestamp"),
    variables=(SERVICE, SESSION),
    items=(
        Row("Summary"),
        Panel(
            key="sessions_total",
            title="Sessions",
            sql=f"SELECT uniqExact(SessionId) AS sessions FROM llm_sessions WHERE {ROLLUP_FILTER}",
            visualization="stat",
            columns=("sessions",),
            unit="short",
            description="Sessions with calls in the hours of the range.",
            thresholds=steps(base=BLUE),
            width=6,
            height=4,
        ),
        Panel(
            key="users_total",
            title="Users",
            sql=f"SELECT uniqExact(UserId) AS users FROM llm_users WHERE {ROLLUP_FILTER}",
            visualization="stat",
            columns=("users",),
            unit="short",
            description="Users with calls in the hours of the range.",
            thresholds=steps(base=BLUE),
            width=6,
            height=4,
        ),
        Panel(
            key="cost_per_user",
            title="Cost per user",
            sql=(
                "SELECT sumMerge(CostUSD) / nullIf(uniqExact(UserId), 0) AS cost_per_user FROM llm_users"
                f" WHERE {ROLLUP_FILTER}"
            ),
            visualization="stat",
            columns=("cost_per_user",),
            unit="currencyUSD",
            decimals=4,
            description="Cost of the users' calls divided by the number of users.",
            thresholds=steps(base=BLUE),
            width=6,
            height=4,
        ),
        Panel(
            key="negative_sessions",
            title="Sessions ending in negative feedback",
            sql=(
                "SELECT count() / nullIf((SELECT uniqExact(SessionId) FROM llm_sessions"
                f" WHERE {ROLLUP_FILTER}), 0) AS share FROM ({_NEGATIVE_ENDINGS})"
            ),
            visualization="stat",
            columns=("share",),
            unit="percentunit",
            description=f"Share of the sessions whose latest feedback scored <= {NEGATIVE:g}.",
            thresholds=steps((0.05, ORANGE), (0.2, RED)),
            width=6,
            height=4,
        ),
        Row("Who costs what"),
        Panel(
            key="active_sessions",
            title="Active sessions and users per hour",
            sql=(
                "SELECT s.time AS time, s.sessions AS sessions, u.users AS users FROM"
                " (SELECT $__timeInterval(Hour) AS time, uniqExact(SessionId) AS sessions FROM llm_sessions"
                f" WHERE {ROLLUP_FILTER} GROUP BY time) AS s LEFT JOIN"
                " (SELECT $__timeInterval(Hour) AS time, uniqExact(UserId) AS users FROM llm_users"
                f" WHERE {ROLLUP_FILTER} GROUP BY time) AS u ON s.time = u.time ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "sessions", "users"),
            unit="short",
            description="Sessions and users with calls in each hour.",
            width=24,
            height=7,
        ),
        _top(
            "top_sessions", "Top sessions by cost", "llm_sessions", "SessionId", "session", ("user_id", "max(UserId)")
        ),
        _top("top_users", "Top users by cost", "llm_users", "UserId", "user", ("sessions", "uniqMerge(Sessions)")),
        Row("Sessions that went wrong"),
        Panel(
            key="negative_endings",
            title="Sessions ending in negative feedback",
            sql=f"{_NEGATIVE_ENDINGS} ORDER BY last_feedback DESC LIMIT 20",
            visualization="table",
            columns=("session", "service", "last_score", "last_feedback", "trace_id"),
            description="Sessions whose latest feedback was negative, latest first; the trace id opens the trace.",
            links=(TRACE_LINK,),
            width=24,
            height=8,
        ),
        Panel(
            key="session_calls",
            title="A session's calls in order",
            sql=(
                f"WITH {_PICKED} AS __session SELECT c.Timestamp AS time, c.SessionId AS session,"
                " c.RequestModel AS model, c.StatusCode AS status, c.DurationNs / 1e9 AS duration_s,"
                " c.OutputTokens AS output_tokens, c.CostUSD AS cost_usd, fb.score AS feedback_score,"
                " substring(c.PromptText, 1, 200) AS prompt, substring(c.ResponseText, 1, 200) AS response,"
                " c.TraceId AS trace_id FROM llm_calls AS c LEFT JOIN (SELECT TraceId, SpanId, avg(Score) AS score"
                f" FROM ({feedback_on_calls_sql(_SESSION_CALLS)}) GROUP BY TraceId, SpanId) AS fb"
                " ON fb.TraceId = c.TraceId AND fb.SpanId = c.SpanId"
                " WHERE c.SessionId = __session AND $__timeFilter(c.Timestamp)"
                f" AND {one_of('c.ServiceName', 'service')} ORDER BY c.Timestamp, c.SpanId LIMIT 200"
            ),
            visualization="table",
            columns=("time", "session", "model", "status", "duration_s", "prompt", "response"),
            description="The calls of the session in the Session box (default: the latest session ending in "
            "negative feedback, else the most expensive), in time order, with their feedback.",
            column_units=(("duration_s", "s"), ("cost_usd", "currencyUSD")),
            links=(TRACE_LINK,),
            width=24,
            height=10,
        ),
    ),
)
