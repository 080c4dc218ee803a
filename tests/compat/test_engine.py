"""The schema, an SDK round trip and the engine's version, on whichever engine runs the suite.

The main suite runs them on the default chDB; ``.ci/clickhouse-24.8`` runs them again, with the panel,
schema and session tests, on ClickHouse 24.8.4 (chDB 2.1.1: the version ``docker-compose.yml`` pins)
and sets ``LLMPULSE_EXPECT_CLICKHOUSE`` so that a wrong engine fails instead of passing unnoticed.
"""

from __future__ import annotations

import os

from llmpulse.agent.cli import main

EXPECTED = os.environ.get("LLMPULSE_EXPECT_CLICKHOUSE", "")


def test_the_engine_is_the_one_asked_for(ch):
    version = ch.query("SELECT version()").result_rows[0][0]
    assert version.startswith(EXPECTED), f"ClickHouse {version}, expected {EXPECTED}"


def test_every_statement_schema_print_prints_runs(ch, database, capsys):
    assert main(["schema", "print", "--database", database]) == 0
    statements = [s.strip() for s in capsys.readouterr().out.split(";\n\n") if s.strip()]
    assert len(statements) > 40
    for statement in statements:
        ch.command(statement.rstrip(";"))
    tables = {r[0] for r in ch.query(f"SHOW TABLES FROM {database}").result_rows}
    assert {"otel_traces", "llm_calls", "feedback", "llm_sessions", "llm_users", "llm_trace_sessions"} <= tables
    assert {"llm_sessions_mv", "serving_histogram_quantile", "gpu_request_cost"} <= tables


def test_sdk_round_trip(configured, ch):
    """@observe with session and user, feedback on the running call: llm_calls, the rollups, the feedback row."""
    from llmpulse import agent

    @agent.observe(kind="llm", prompt_template="qa", prompt_version="v1")
    def chat(model: str, messages: list) -> dict:
        agent.feedback(score=1.0, name="thumbs")
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Lima"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 1},
        }

    with agent.attributes(session_id="s-1", user_id="u-1"):
        chat("gpt-4o-mini", [{"role": "user", "content": "Capital of Peru?"}])
    assert agent.flush(60)
    database = configured["database"]
    row = ch.query(
        "SELECT RequestModel, InputTokens, OutputTokens, CostUSD > 0, PromptText, ResponseText, SessionId, UserId"
        " FROM {db:Identifier}.llm_calls",
        parameters={"db": database},
    ).result_rows
    assert row == [("gpt-4o-mini", 11, 1, True, "Capital of Peru?", "Lima", "s-1", "u-1")]
    session = ch.query(
        "SELECT SessionId, max(UserId), sum(Calls), sumMerge(CostUSD) > 0 FROM {db:Identifier}.llm_sessions"
        " GROUP BY SessionId",
        parameters={"db": database},
    ).result_rows
    assert session == [("s-1", "u-1", 1, True)]
    feedback = ch.query("SELECT Score FROM {db:Identifier}.feedback", parameters={"db": database}).result_rows
    assert feedback == [(1.0,)]
