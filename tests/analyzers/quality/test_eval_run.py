"""Eval runs: a golden set through an @observe function, scored, stored, compared with a baseline."""

from __future__ import annotations

import pytest
from llmpulse.agent.cli import main
from llmpulse.analyzers.io.references import store_items
from llmpulse.analyzers.quality.eval_run import output_text, resolve_target, run_eval
from llmpulse.analyzers.quality.references import ITEM_ID_ATTRIBUTE, ReferenceItem

from llmpulse import agent

ITEMS = [
    ReferenceItem("geo", f"c{i}", reference=f"The capital of country {i} is City{i}.", input=f"Capital of country {i}?")
    for i in range(24)
]
ANSWERS = {item.input: item.reference for item in ITEMS}


def _completion(text: str) -> dict:
    return {
        "id": "chatcmpl-eval",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
    }


@agent.observe(model="gpt-4o-mini")
def answer_v1(question: str) -> dict:
    return _completion(ANSWERS[question])


@agent.observe(model="gpt-4o-mini")
def answer_v2(question: str) -> dict:
    """A worse version: every other answer is wrong, one call fails."""
    number = int(question.split()[3].rstrip("?"))
    if number == 5:
        raise TimeoutError("upstream timed out")
    return _completion(ANSWERS[question] if number % 2 else "I am not sure about that.")


def test_output_text_and_target_resolution() -> None:
    assert output_text(_completion("Hi.")) == "Hi."
    assert output_text("plain") == "plain" and output_text(None) == ""
    assert resolve_target("tests.analyzers.quality.test_eval_run:answer_v1") is answer_v1
    for spec, message in [
        ("nocolon", "use module:function"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("tests.analyzers.quality.test_eval_run:missing", "has no attribute 'missing'"),
        ("tests.analyzers.quality.test_eval_run:ITEMS", "is not callable"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_target(spec)


def test_eval_runs_scores_compares_and_tags_the_spans(ch, configured) -> None:
    database = configured["database"]
    store_items(ch, database, ITEMS)

    first = run_eval(ch, database, dataset="geo", target=answer_v1, version="v1", metrics=["rougeL", "exact_match"])
    assert first.errors == 0 and first.means == {"rougeL": 1.0, "exact_match": 1.0}
    second = run_eval(
        ch, database, dataset="geo", target=answer_v2, version="v2", baseline="v1", metrics=["rougeL", "exact_match"]
    )
    assert second.errors == 1 and "TimeoutError" in next(o.error for o in second.outcomes if o.error)
    deltas = {r.metric: r for r in second.results if r.metric.endswith("_delta")}
    assert set(deltas) == {"rougeL_delta", "exact_match_delta"}
    assert all(r.alert and r.details["n"] == 24 and r.details["regression"] for r in deltas.values())
    assert deltas["exact_match_delta"].value == pytest.approx(-13 / 24)

    stored = ch.query(
        "SELECT Version, count(), countIf(Flagged) FROM {db:Identifier}.call_scores WHERE Scorer = 'eval' "
        "GROUP BY Version ORDER BY Version",
        parameters={"db": database},
    ).result_rows
    assert stored == [("v1", 24, 0), ("v2", 24, 1)]
    alerts = ch.query(
        "SELECT Analyzer, Metric FROM {db:Identifier}.alerts ORDER BY Metric", parameters={"db": database}
    ).result_rows
    assert alerts == [("quality_eval", "exact_match_delta"), ("quality_eval", "rougeL_delta")]

    agent.flush()
    tagged = ch.query(
        "SELECT count() FROM {db:Identifier}.otel_traces WHERE SpanAttributes[{key:String}] = 'c3' "
        "AND SpanAttributes['llmpulse.eval.version'] = 'v2'",
        parameters={"db": database, "key": ITEM_ID_ATTRIBUTE},
    ).result_rows[0][0]
    assert tagged == 2  # the eval's own span and the target's LLM span
    calls = ch.query(
        "SELECT count() FROM {db:Identifier}.llm_calls WHERE ResponseText != ''", parameters={"db": database}
    ).result_rows[0][0]
    assert calls == 24 + 23


def test_eval_cli_with_a_regression_gate(ch, configured, store_dsn, capsys) -> None:
    database = configured["database"]
    store_items(ch, database, ITEMS)
    base = [
        "eval",
        "--dataset",
        "geo",
        "--dsn",
        store_dsn,
        "--database",
        database,
        "--metrics",
        "rougeL",
        "--no-embeddings",
    ]
    assert main([*base, "--target", "tests.analyzers.quality.test_eval_run:answer_v1", "--version", "v1"]) == 0
    assert "rougeL       mean 1.0000" in capsys.readouterr().out
    code = main(
        [
            *base,
            "--target",
            "tests.analyzers.quality.test_eval_run:answer_v2",
            "--version",
            "v2",
            "--baseline",
            "v1",
            "--fail-on-regression",
        ]
    )
    out = capsys.readouterr().out
    assert code == 3 and "REGRESSION v2 vs v1 on geo: rougeL" in out and "1 error(s)" in out
    assert main([*base, "--target", "nope", "--version", "v3"]) == 2
    assert "bad --target 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--dataset",
                "nothing",
                "--dsn",
                store_dsn,
                "--database",
                database,
                "--target",
                "tests.analyzers.quality.test_eval_run:answer_v1",
                "--version",
                "v1",
                "--no-embeddings",
            ]
        )
        == 2
    )
    assert "no reference items in dataset 'nothing'" in capsys.readouterr().err
