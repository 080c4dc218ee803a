"""Sessions and users: the rollups agree with llm_calls for any window, sorts, feedback, a session's calls, the CLI."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from llmpulse.agent.cli import main
from llmpulse.agent.store.insert import insert_rows
from llmpulse.agent.store.schema import SchemaOptions, apply
from llmpulse.dashboards.sessions import SORTS, Window, list_rollup, session_calls

SERVICES = ("chat-app", "batch-jobs")


@dataclass
class Rolled:
    database: str
    now: datetime
    trace_of: dict[int, str]
    span_of: dict[int, str]


def _call(index: int, moment: datetime) -> dict:
    """Call ``index`` of trace ``index // 2`` (2 calls per trace), whose number gives its session s<t % 7>,
    user u<t % 3> (none for every 10th trace) and service (batch-jobs for every 11th)."""
    trace = index // 2
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": ("gpt-4o-mini", "claude-3-5-haiku-20241022")[index % 2],
        "session.id": f"s{trace % 7}",
        "gen_ai.usage.input_tokens": str(10 + index % 5),
        "gen_ai.usage.output_tokens": str(20 + index % 3),
        "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"question {index}"}}]}}]',
        "llmpulse.output.text": f"answer {index}",
    }
    if trace % 10:
        attributes["user.id"] = f"u{trace % 3}"
    if index % 4:
        attributes["llmpulse.cost.usd"] = f"{0.001 * (index % 13 + 1):.6f}"  # every 4th call has no price
    return {
        "Timestamp": moment,
        "TraceId": f"{trace:032x}",
        "SpanId": f"{index + 1:016x}",
        "ParentSpanId": "",
        "SpanName": "chat",
        "SpanKind": "Client",
        "ServiceName": SERVICES[trace % 11 == 0],
        "SpanAttributes": attributes,
        "Duration": int(1e9 * (0.2 + (index * 37 % 17) / 10)),
        "StatusCode": "Error" if index % 9 == 0 else "Ok",
        "StatusMessage": "",
    }


@pytest.fixture(scope="module")
def rolled(ch) -> Rolled:
    """200 calls, one every 97 s over about 5.4 hours up to now (whole and partial hours), and feedback."""
    database = f"sess_{uuid.uuid4().hex[:10]}"
    apply(ch, SchemaOptions(database=database))
    now = datetime.now(timezone.utc)
    rows = [_call(i, now - timedelta(seconds=97 * (199 - i))) for i in range(200)]
    insert_rows(ch, database, "otel_traces", rows[:120])  # two inserts: the rollups merge partial states
    insert_rows(ch, database, "otel_traces", rows[120:])
    trace_of = {i: rows[i]["TraceId"] for i in range(200)}
    span_of = {i: rows[i]["SpanId"] for i in range(200)}
    feedback = [
        # on a call's own span: about that call
        (trace_of[150], span_of[150], 1.0),
        (trace_of[151], span_of[151], 0.0),
        # on the trace (no span) or on another span: about the trace's last call
        (trace_of[198], "", -1.0),
        (trace_of[196], "00000000000000ff", 0.0),
        (trace_of[140], "", 1.0),
    ]
    insert_rows(
        ch,
        database,
        "feedback",
        [
            {"Timestamp": now, "FeedbackId": f"f{n}", "TraceId": t, "SpanId": s, "Name": "thumbs", "Score": score}
            for n, (t, s, score) in enumerate(feedback)
        ],
    )
    return Rolled(database, now, trace_of, span_of)


DIRECT = """SELECT ServiceName, {key}, count(), countIf(StatusCode = 'Error'),
    sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0)), sum(CostUSD), avg(DurationNs) / 1e9,
    quantile(0.95)(DurationNs) / 1e9, min(Timestamp), max(Timestamp)
FROM {{db:Identifier}}.llm_calls
WHERE {key} != '' AND Timestamp >= fromUnixTimestamp64Nano({{start_ns:Int64}})
    AND Timestamp <= fromUnixTimestamp64Nano({{end_ns:Int64}})
GROUP BY ServiceName, {key}"""


@pytest.mark.parametrize("kind", ["session", "user"])
@pytest.mark.parametrize("minutes", [7, 61, 150, 24 * 60])
def test_listing_matches_llm_calls_for_any_window(ch, rolled, kind, minutes):
    """Whole hours from the rollup, the partial first and last hours from llm_calls: exact for any window."""
    window = Window.last(timedelta(minutes=minutes), rolled.now + timedelta(seconds=1))
    key = "SessionId" if kind == "session" else "UserId"
    direct = ch.query(DIRECT.format(key=key), parameters={"db": rolled.database, **window.parameters()}).result_rows
    expected = {(r[0], r[1]): r[2:] for r in direct}
    listed = list_rollup(ch, rolled.database, kind, window, limit=1000)
    assert {(r["service"], r["id"]) for r in listed} == set(expected)
    for row in listed:
        calls, errors, tokens, cost, mean, p95, first, last = expected[(row["service"], row["id"])]
        assert (row["calls"], row["errors"], row["tokens"]) == (calls, errors, tokens)
        assert row["cost_usd"] == pytest.approx(cost) if cost is not None else row["cost_usd"] is None
        assert row["mean_s"] == pytest.approx(mean) and row["p95_s"] == pytest.approx(p95)
        assert (row["first_seen"], row["last_seen"]) == (first, last)


def test_users_count_their_sessions(ch, rolled):
    window = Window.last(timedelta(days=1), rolled.now + timedelta(seconds=1))
    listed = {
        (r["service"], r["id"]): r["sessions"] for r in list_rollup(ch, rolled.database, "user", window, limit=100)
    }
    direct = ch.query(
        "SELECT ServiceName, UserId, uniqExact(SessionId) FROM {db:Identifier}.llm_calls WHERE UserId != ''"
        " GROUP BY ServiceName, UserId",
        parameters={"db": rolled.database},
    ).result_rows
    assert listed == {(service, user): sessions for service, user, sessions in direct}
    assert max(listed.values()) == 7


@pytest.mark.parametrize("sort", list(SORTS))
def test_every_sort_orders_the_listing(ch, rolled, sort):
    window = Window.last(timedelta(days=1), rolled.now + timedelta(seconds=1))
    rows = list_rollup(ch, rolled.database, "session", window, sort=sort, limit=100)
    column, descending = {
        "cost": ("cost_usd", True),
        "errors": ("errors", True),
        "feedback": ("mean_score", False),
        "calls": ("calls", True),
        "tokens": ("tokens", True),
        "latency": ("p95_s", True),
        "last-seen": ("last_seen", True),
    }[sort]
    values = [r[column] for r in rows if r[column] is not None]
    assert values == sorted(values, reverse=descending)
    if sort == "feedback":  # rated sessions first, the worst first; the unrated last
        assert [r["mean_score"] is None for r in rows] == sorted(r["mean_score"] is None for r in rows)
    top = list_rollup(ch, rolled.database, "session", window, sort=sort, limit=2)
    assert [(r["service"], r["id"]) for r in top] == [(r["service"], r["id"]) for r in rows[:2]]


def test_feedback_is_joined_through_the_traces_it_names(ch, rolled):
    window = Window.last(timedelta(days=1), rolled.now + timedelta(seconds=1))
    by_id = {(r["service"], r["id"]): r for r in list_rollup(ch, rolled.database, "session", window, limit=100)}
    # trace 75 (calls 150, 151) is session s5; trace 99 is s1 of batch-jobs; traces 98 and 70 are s0
    expected = {
        ("chat-app", "s5"): (2, 0.5, 1),
        ("batch-jobs", "s1"): (1, -1.0, 1),
        ("chat-app", "s0"): (2, 0.5, 1),
        ("chat-app", "s2"): (0, None, 0),
    }
    for key, (count, mean, negative) in expected.items():
        row = by_id[key]
        assert (row["feedback"], row["mean_score"], row["negative"]) == (count, mean, negative), key


def test_a_sessions_calls_in_order_with_their_feedback(ch, rolled):
    calls = session_calls(ch, rolled.database, "s1")
    times = [c["time"] for c in calls]
    assert times == sorted(times) and len(calls) == len([i for i in range(200) if i // 2 % 7 == 1])
    # the feedback on trace 99 as a whole is about its last call, 199
    assert {c["span_id"]: c["score"] for c in calls if c["feedback"]} == {rolled.span_of[199]: -1.0}
    assert calls[-1]["prompt"] == "question 199" and calls[-1]["response"] == "answer 199"
    assert session_calls(ch, rolled.database, "s1", service="batch-jobs") == [
        c for c in calls if c["service"] == "batch-jobs"
    ]
    assert session_calls(ch, rolled.database, "s5") and session_calls(ch, rolled.database, "no-such-session") == []
    scores = {c["span_id"]: c["score"] for c in session_calls(ch, rolled.database, "s5") if c["feedback"]}
    assert scores == {rolled.span_of[150]: 1.0, rolled.span_of[151]: 0.0}


@pytest.mark.parametrize("hostile", ["chat-app' OR 1=1 --", "\\' OR '1'='1", "x\\", "chat-app\nOR 1=1"])
def test_typed_values_are_bound_parameters(ch, rolled, hostile):
    window = Window.last(timedelta(days=1), rolled.now + timedelta(seconds=1))
    assert list_rollup(ch, rolled.database, "session", window, service=hostile) == []
    assert session_calls(ch, rolled.database, hostile) == []
    assert ch.query(f"SELECT count() FROM {rolled.database}.llm_sessions").result_rows[0][0] > 0


def test_a_store_from_before_the_rollups_is_backfilled_once(ch, monkeypatch):
    """Migration 7 on a store with calls: the rollups get the stored calls, then the new ones, none twice."""
    from llmpulse.agent.store.schema import migrations

    database = f"sess_{uuid.uuid4().hex[:10]}"
    options = SchemaOptions(database=database)
    monkeypatch.setattr(migrations, "MIGRATIONS", tuple(m for m in migrations.MIGRATIONS if m.version < 7))
    apply(ch, options)
    now = datetime.now(timezone.utc)
    insert_rows(ch, database, "otel_traces", [_call(i, now - timedelta(minutes=i)) for i in range(1, 30)])
    monkeypatch.undo()
    assert [m.version for m in apply(ch, options)] == [7]
    insert_rows(ch, database, "otel_traces", [_call(i, now - timedelta(minutes=i)) for i in range(30, 50)])
    window = Window.last(timedelta(days=1), now + timedelta(seconds=1))
    listed = list_rollup(ch, database, "session", window, limit=100)
    assert sum(r["calls"] for r in listed) == 49
    hours = ch.query(f"SELECT sum(Calls) FROM {database}.llm_sessions").result_rows[0][0]
    assert hours == 49


# --- the command line --------------------------------------------------------------------------------


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse refuses bad options with exit status 2
        status = int(exc.code or 0)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_lists_sessions_and_users(store_dsn, rolled, capsys):
    store = ("--dsn", store_dsn, "--database", rolled.database)
    status, out, _ = _run(capsys, "sessions", *store, "--sort", "cost", "--limit", "3", "--window", "1d")
    lines = out.splitlines()
    assert status == 0 and lines[0].split()[:5] == ["session", "service", "user", "calls", "errors"]
    assert len(lines) == 4
    status, out, _ = _run(capsys, "users", *store, "--format", "jsonl", "--service", "batch-jobs")
    assert status == 0 and {json_row["service"] for json_row in map(_json, out.splitlines())} == {"batch-jobs"}
    status, out, _ = _run(capsys, "sessions", "show", "s1", *store, "--service", "batch-jobs")
    assert status == 0 and out.startswith("session s1 · service batch-jobs")
    assert "question 199" in out.splitlines()[-1]


def _json(line: str) -> dict:
    import json

    return json.loads(line)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (("sessions", "--sort", "price"), 2, "argument --sort: invalid choice: 'price'"),
        (("users", "--limit", "0"), 2, "argument --limit: must be between 1 and 10000, got 0"),
        (("sessions", "--limit", "many"), 2, "argument --limit: must be a whole number, got 'many'"),
        (("sessions", "--window", "forever"), 2, "bad duration 'forever'"),
        (("users", "--format", "xml"), 2, "argument --format: invalid choice: 'xml'"),
        (("sessions", "show"), 2, "the following arguments are required: SESSION_ID"),
    ],
)
def test_cli_bad_options_say_what_is_wrong(store_dsn, rolled, capsys, argv, status, message):
    got, _, err = _run(capsys, *argv, "--dsn", store_dsn, "--database", rolled.database)
    assert got == status and message in err, err


def test_cli_empty_results_say_why(store_dsn, rolled, capsys, ch):
    store = ("--dsn", store_dsn, "--database", rolled.database)
    status, out, err = _run(capsys, "sessions", *store, "--service", "nobody")
    assert status == 0 and out == ""
    assert "no sessions in the last 24h: no LLM calls of service 'nobody' in this window" in err
    status, _, err = _run(capsys, "sessions", "show", "s404", *store)
    assert status == 1 and "no session 's404' in the store" in err
    # calls without user ids: the message says how to set them
    database = f"sess_{uuid.uuid4().hex[:10]}"
    apply(ch, SchemaOptions(database=database))
    row = _call(0, datetime.now(timezone.utc))  # trace 0 has no user id
    insert_rows(ch, database, "otel_traces", [row])
    status, _, err = _run(capsys, "users", "--dsn", store_dsn, "--database", database)
    assert "1 LLM call(s) in this window, none with a user id (set one with attributes(user_id=...)" in err
    # a store whose schema predates the rollups
    old = f"sess_{uuid.uuid4().hex[:10]}"
    ch.command(f"CREATE DATABASE {old}")
    status, _, err = _run(capsys, "sessions", "--dsn", store_dsn, "--database", old)
    assert status == 2 and "has no session and user rollups" in err and "llmpulse schema apply" in err


def test_mean_latency_is_finite_for_every_row(ch, rolled):
    window = Window.last(timedelta(days=1), rolled.now + timedelta(seconds=1))
    for row in list_rollup(ch, rolled.database, "user", window, limit=100):
        assert math.isfinite(row["mean_s"]) and row["models"] == sorted(row["models"])
