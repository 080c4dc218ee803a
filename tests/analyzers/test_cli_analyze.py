"""``llmpulse analyze`` end to end: calls written by the real @observe pipeline, analyzed through the CLI."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from llmpulse.agent import observe
from llmpulse.agent.cli import main
from llmpulse.analyzers.framework import registry

from llmpulse import agent
from tests.conftest import SHARED_DATA

from .framework_helpers import call_row, create_schema, insert_calls, spread

RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "an answer"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 10},
}


def count(ch, database: str, table: str, where: str = "1") -> int:
    return ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0]


def texts(name: str, field: str, limit: int, seed: int) -> list[str]:
    with (SHARED_DATA / name).open(encoding="utf-8") as handle:
        items = list(dict.fromkeys(json.loads(line)[field].strip() for line in handle if line.strip()))
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order[:limit]]


@pytest.fixture
def only_framework_analyzers(monkeypatch):
    """``analyze all`` over this test's analyzers only (others are tested by their own modules)."""
    monkeypatch.setattr(
        registry,
        "ANALYZERS",
        {"operational": registry.ANALYZERS["operational"], "drift": registry.ANALYZERS["drift"]},
    )


@pytest.mark.skipif(not (SHARED_DATA / "halueval_general.jsonl").exists(), reason=f"no shared data at {SHARED_DATA}")
def test_analyze_all_finds_slower_failing_drifted_calls(
    configured, ch, store_dsn, capsys, only_framework_analyzers, minilm
) -> None:
    database = configured["database"]
    reference_prompts = texts("halueval_general.jsonl", "user_query", 80, seed=1)
    current_prompts = texts("halueval_qa_500.jsonl", "question", 40, seed=2)

    @observe(model_version="2025-06")
    def ask(model: str, messages: list) -> dict:
        time.sleep(0.03)
        if messages[0]["content"] in current_prompts[::4]:
            raise TimeoutError("upstream timed out")
        return {**RESPONSE, "model": model}

    for prompt in current_prompts:  # the current window, through the real pipeline
        try:
            ask(model="gpt-4o", messages=[{"role": "user", "content": prompt}])
        except TimeoutError:
            pass
    assert agent.flush()
    assert count(ch, database, "llm_calls", "StatusCode = 'Error'") == 10
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    rng = np.random.default_rng(3)
    reference = [
        call_row(
            at,
            i,
            service="test-svc",
            model="gpt-4o",
            prompt=prompt,
            response="an answer",
            ModelVersion="2025-06",
            DurationNs=int(rng.uniform(4e6, 6e6)),
            StatusCode="Unset",
        )
        for i, (at, prompt) in enumerate(
            zip(
                spread(end - timedelta(days=1, minutes=30), end - timedelta(minutes=30), 80),
                reference_prompts,
                strict=True,
            )
        )
    ]
    insert_calls(ch, database, reference)

    code = main(
        [
            "analyze",
            "all",
            "--dsn",
            store_dsn,
            "--database",
            database,
            "--window",
            "30m",
            "--reference",
            "1d",
            "--end",
            end.isoformat(),
            "--segment-by",
            "model",
            "-o",
            "sides=prompt",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "analyzer     segment" in out and "ALERT" in out
    assert "[warning] drift: prompt_embedding_mmd2 (model=gpt-4o): prompt embeddings drifted" in out
    assert "operational: latency_p50 (model=gpt-4o)" in out and "operational: error_rate (model=gpt-4o)" in out
    alerts = ch.query(f"SELECT Analyzer, Metric FROM {database}.alerts ORDER BY 1, 2").result_rows
    assert ("drift", "prompt_embedding_mmd2") in alerts and ("operational", "error_rate") in alerts
    assert ("operational", "latency_p50") in alerts
    assert count(ch, database, "analysis_results", "Analyzer = 'drift' AND Status = 'ok'") == 3
    assert count(ch, database, "embeddings") == 120


@pytest.fixture
def stored(ch, database) -> str:
    """A database holding one earlier result row (which failed runs must leave alone)."""
    create_schema(ch, database)
    now = datetime.now(timezone.utc)
    insert_calls(ch, database, [call_row(now - timedelta(minutes=5), 1, DurationNs=1000)])
    return database


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "nope"], "llmpulse: error: unknown analyzer 'nope'; choose from operational, drift"),
        (
            ["analyze", "drift", "--window", "1hour"],
            "llmpulse: error: bad duration '1hour': use a number and ms, s, m, h, d or w",
        ),
        (["analyze", "drift", "--reference", "0d"], "llmpulse: error: bad duration '0d'"),
        (["analyze", "drift", "--end", "tomorrow"], "llmpulse: error: bad time 'tomorrow'"),
        (["analyze", "drift", "--segment-by", "colour"], "llmpulse: error: unknown segment key(s) colour"),
        (["analyze", "drift", "--alpha", "1.5"], "llmpulse: error: --alpha must be between 0 and 1, got 1.5"),
        (["analyze", "drift", "-o", "permutations"], "llmpulse: error: bad --option 'permutations': use KEY=VALUE"),
        (["analyze", "drift", "-o", "permutation=600"], "llmpulse: error: unknown option(s) permutation for drift"),
        (["analyze", "operational", "-o", "bootstrap=ten"], "llmpulse: error: option bootstrap: expected int"),
        (["analyze", "drift", "--dsn", "ftp://host/db"], "llmpulse: error: unsupported scheme 'ftp' in store DSN"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_keeps_what_is_stored(
    ch, stored, store_dsn, capsys, only_framework_analyzers, argv, message
) -> None:
    main(["analyze", "operational", "--dsn", store_dsn, "--database", stored, "--no-write"])
    main(["analyze", "operational", "--dsn", store_dsn, "--database", stored])
    before = count(ch, stored, "analysis_results")
    capsys.readouterr()
    args = argv if "--dsn" in argv else [*argv, "--dsn", store_dsn, "--database", stored]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(message)
    assert count(ch, stored, "analysis_results") == before > 0
    assert count(ch, stored, "llm_calls") == 1


def test_not_enough_data_is_printed_and_stored_and_no_write_writes_nothing(ch, stored, store_dsn, capsys) -> None:
    assert main(["analyze", "operational", "--dsn", store_dsn, "--database", stored, "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "not_enough_data" in out and "no alerts" in out
    assert count(ch, stored, "analysis_results") == 0
    assert main(["analyze", "operational", "--dsn", store_dsn, "--database", stored, "--segment-by", "model"]) == 0
    assert count(ch, stored, "analysis_results", "Status = 'not_enough_data'") == 8


def test_fail_on_alert_exits_3(ch, stored, store_dsn, capsys) -> None:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = [
        call_row(at, 100 + i, DurationNs=int(5e6 if at < now - timedelta(hours=1) else 5e7))
        for i, at in enumerate(spread(now - timedelta(hours=3), now, 300))
    ]
    insert_calls(ch, stored, rows)
    argv = [
        "analyze",
        "operational",
        "--dsn",
        store_dsn,
        "--database",
        stored,
        "--window",
        "1h",
        "--reference",
        "2h",
        "--segment-by",
        "model",
    ]
    assert main([*argv, "--end", now.isoformat(), "--fail-on-alert"]) == 3
    assert "[critical] operational: latency_p50 (model=m1): latency_p50 0.05 vs 0.005 before (+900%)" in (
        capsys.readouterr().out
    )
    assert main([*argv, "--end", now.isoformat()]) == 0
