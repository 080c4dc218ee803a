"""Session and user listings on a month of calls: how long ``llmpulse sessions`` / ``users`` take, from the rollups.

Loads a fresh embedded store with ``--calls`` calls (default 1 M) in ``--sessions`` sessions (50 k) of
``--users`` users (5 k) over the 30 days up to now: each session's calls a minute and a half apart from
a start drawn by a hash, 1 call per trace, 2 % errors, token counts and cost, and feedback (0 or 1) on
2 % of the calls. Rows are generated in SQL (``INSERT INTO llm_calls SELECT ... FROM numbers()``, as
``analyze_scale.py`` does), so the rollups fill through their materialized views as they would in
production. Then prints the time of each listing (first run and median of ``--repeat``), the same
listing computed straight from ``llm_calls`` for comparison, and ``sessions show``. Figures only: it
sets no limit.

    python bench/sessions.py [--calls 1000000] [--sessions 50000] [--users 5000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

DATABASE = "llmpulse"
CHUNK = 100_000
MONTH = 30 * 86400

SELECT = """
SELECT
    intDiv(number, {per_session:UInt64}) AS session,
    fromUnixTimestamp64Nano(toInt64(({start:Int64} + cityHash64(session, 1) % {span:UInt64}
        + (number % {per_session:UInt64}) * 90) * 1000000000 + cityHash64(number, 2) % 1000000000)) AS Timestamp,
    lower(hex(sipHash128(number))) AS TraceId,
    lower(hex(sipHash64(number))) AS SpanId,
    ['support-bot', 'search', 'agent'][1 + cityHash64(session, 3) % 3] AS ServiceName,
    'chat' AS SpanName,
    'openai' AS Provider,
    'chat' AS Operation,
    ['gpt-4o-mini', 'gpt-4o'][1 + cityHash64(number, 4) % 2] AS RequestModel,
    RequestModel AS ResponseModel,
    concat('user-', toString(cityHash64(session, 5) % {users:UInt64})) AS UserId,
    concat('session-', toString(session)) AS SessionId,
    toUInt64(50 + cityHash64(number, 6) % 900) AS InputTokens,
    toUInt64(20 + cityHash64(number, 7) % 400) AS OutputTokens,
    (InputTokens * 0.15 + OutputTokens * 0.6) / 1e6 AS CostUSD,
    toUInt64(1e9 * exp(0.6 * ((cityHash64(number, 8) % 1000003) / 1000003.0 - 0.5) * 3.4)) AS DurationNs,
    if(cityHash64(number, 9) % 100 < 2, 'Error', 'Ok') AS StatusCode,
    concat('question ', toString(number)) AS PromptText,
    concat('answer ', toString(number)) AS ResponseText
FROM numbers({first:UInt64}, {count:UInt64})"""
COLUMNS = (
    "Timestamp, TraceId, SpanId, ServiceName, SpanName, Provider, Operation, RequestModel, ResponseModel, UserId, "
    "SessionId, InputTokens, OutputTokens, CostUSD, DurationNs, StatusCode, PromptText, ResponseText"
)
FEEDBACK = """
INSERT INTO {db}.feedback (Timestamp, FeedbackId, TraceId, SpanId, ServiceName, Name, Score, Source)
SELECT Timestamp + toIntervalSecond(30), lower(hex(sipHash64(TraceId))), TraceId, SpanId, ServiceName, 'thumbs',
    toFloat64(cityHash64(TraceId, 10) % 2), 'human'
FROM {db}.llm_calls WHERE cityHash64(TraceId, 11) % 50 = 0"""

# The same listing computed straight from llm_calls (no rollup), its feedback joined the same way.
DIRECT = """
SELECT r.*, fb.feedback, fb.fb_mean, fb.fb_negative FROM (
    SELECT ServiceName, SessionId AS id, max(UserId), count() AS calls, countIf(StatusCode = 'Error'),
        sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0)) AS tokens, sum(CostUSD) AS cost,
        avg(DurationNs) / 1e9, quantile(0.95)(DurationNs) / 1e9, min(Timestamp), max(Timestamp)
    FROM {{db:Identifier}}.llm_calls
    WHERE SessionId != '' AND Timestamp >= fromUnixTimestamp64Nano({{start_ns:Int64}})
    GROUP BY ServiceName, id
) AS r LEFT JOIN ({feedback}) AS fb ON fb.fb_service = r.ServiceName AND fb.fb_id = r.id
ORDER BY cost DESC LIMIT 20"""


def load(client: Any, calls: int, sessions: int, users: int, end: datetime) -> float:
    from llmpulse.agent.store.schema import SchemaOptions, apply

    apply(client, SchemaOptions(database=DATABASE))
    per_session = max(1, calls // sessions)
    start = int(end.timestamp()) - MONTH
    span = MONTH - per_session * 90
    started = time.perf_counter()
    for first in range(0, calls, CHUNK):
        client.command(
            f"INSERT INTO {DATABASE}.llm_calls ({COLUMNS}) SELECT {COLUMNS} FROM ({SELECT})",
            parameters={
                "first": first,
                "count": min(CHUNK, calls - first),
                "per_session": per_session,
                "start": start,
                "span": span,
                "users": users,
            },
            settings={"max_block_size": 16384, "max_insert_block_size": CHUNK},
        )
    client.command(FEEDBACK.format(db=DATABASE))
    loaded = time.perf_counter() - started
    for table in ("llm_calls", "llm_sessions", "llm_users", "llm_trace_sessions", "feedback"):
        client.command(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")  # no merges left to run during the timings
    return loaded


def timed(run: Any, repeat: int) -> tuple[float, float, int]:
    """(first run s, median of the next ``repeat`` s, rows) of ``run()``."""
    times, rows = [], 0
    for _ in range(repeat + 1):
        started = time.perf_counter()
        rows = len(run())
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:]), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs after the first (default 5)")
    parser.add_argument("--keep", help="keep the store in this directory (default: a temporary one, removed)")
    args = parser.parse_args()

    from llmpulse.agent.store.dsn import parse_dsn
    from llmpulse.dashboards.sessions import Window, feedback_side, list_rollup, session_calls

    root = args.keep or tempfile.mkdtemp(prefix="llmpulse-sessions-")
    client = parse_dsn(f"chdb://{root}/store").client()
    try:
        end = datetime.now(timezone.utc)
        loaded = load(client, args.calls, args.sessions, args.users, end)
        counts = {
            table: client.query(f"SELECT count() FROM {DATABASE}.{table}").result_rows[0][0]
            for table in ("llm_calls", "feedback", "llm_sessions", "llm_users", "llm_trace_sessions")
        }
        print(
            f"{counts['llm_calls']:,} calls, {args.sessions:,} sessions, {args.users:,} users, "
            f"{counts['feedback']:,} feedback rows over 30 days; loaded in {loaded:.1f} s (views included)"
        )
        print(
            f"rollup rows: llm_sessions {counts['llm_sessions']:,}, llm_users {counts['llm_users']:,}, "
            f"llm_trace_sessions {counts['llm_trace_sessions']:,}"
        )
        print(f"\n{'query':<46}{'first s':>9}{'median s':>10}{'rows':>7}")
        cases: list[tuple[str, Any]] = []
        for kind, sort, days in (
            ("session", "cost", 1),
            ("session", "cost", 7),
            ("session", "cost", 30),
            ("session", "feedback", 30),
            ("session", "errors", 30),
            ("user", "cost", 30),
            ("user", "feedback", 30),
        ):
            window = Window.last(timedelta(days=days), end + timedelta(seconds=1))
            label = f"{'sessions' if kind == 'session' else 'users'} --sort {sort} --window {days}d"
            cases.append((label, lambda k=kind, s=sort, w=window: list_rollup(client, DATABASE, k, w, sort=s)))
        month = Window.last(timedelta(days=30), end + timedelta(seconds=1))
        direct = DIRECT.format(feedback=feedback_side("session"))
        cases.append(
            (
                "(sessions 30d straight from llm_calls)",
                lambda: client.query(direct, parameters={"db": DATABASE, **month.parameters()}).result_rows,
            )
        )
        top = list_rollup(client, DATABASE, "session", Window.last(timedelta(days=30), end), limit=1)[0]["id"]
        cases.append((f"sessions show {top}", lambda: session_calls(client, DATABASE, top)))
        for label, run in cases:
            first, median, rows = timed(run, args.repeat)
            print(f"{label:<46}{first:>9.3f}{median:>10.3f}{rows:>7}", flush=True)
    finally:
        client.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
