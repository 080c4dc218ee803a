"""Quality metrics, the paired comparison and the quality analyzer end to end on the embedded store."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from llmpulse.analyzers.framework.runner import run_analyzer
from llmpulse.analyzers.framework.windows import Window
from llmpulse.analyzers.io.references import store_items
from llmpulse.analyzers.io.store import AnalysisStore
from llmpulse.analyzers.quality.comparison import compare_items, compare_paired, item_means
from llmpulse.analyzers.quality.metrics import normalise_answer, parse_metrics, score_pair, score_pairs
from llmpulse.analyzers.quality.references import ITEM_ID_ATTRIBUTE, ReferenceItem

from tests.analyzers.framework_helpers import NOW, call_row, create_schema, insert_calls, minutes, spread


def test_rouge_matches_rouge_score_on_its_own_example() -> None:
    # rouge-score's README example: ROUGE-1 P 0.75 R 0.75 for these two sentences
    scores = score_pair("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog")
    assert scores["rouge1"] == pytest.approx(0.75 * 2 * 0.8888 / (0.75 + 0.8888), abs=0.2)  # F of P=6/8, R=6/9
    assert scores["rouge1"] == pytest.approx(2 * (6 / 8) * (6 / 9) / (6 / 8 + 6 / 9))


def test_metrics_are_one_on_identical_text_and_low_on_unrelated_text() -> None:
    same = score_pair("Paris is the capital of France.", "Paris is the capital of France.")
    assert all(same[m] == pytest.approx(1.0) for m in same)
    other = score_pair("Bananas are yellow.", "Paris is the capital of France.")
    assert other["rouge1"] == 0.0 and other["bleu"] < 0.1 and other["chrf"] < 0.3 and other["exact_match"] == 0.0


def test_exact_match_uses_squad_normalisation() -> None:
    assert normalise_answer("The  Eiffel Tower!") == "eiffel tower"
    assert score_pair("the eiffel tower", "Eiffel Tower.")["exact_match"] == 1.0


def test_non_latin_text_is_scored_not_zeroed() -> None:
    scores = score_pair("北京是中国的首都", "北京是中国首都")
    assert 0.8 < scores["rouge1"] < 1.0 and scores["bleu"] > 0.3


def test_score_pairs_with_embeddings(minilm) -> None:
    from llmpulse.analyzers.embeddings import Embedder

    scores = score_pairs(
        ["A cat sat on a mat.", "Stock prices fell."],
        ["A cat was sitting on the mat.", "It rained."],
        Embedder().encode,
    )
    assert scores["embedding"][0] > 0.7 > scores["embedding"][1]
    with pytest.raises(ValueError, match="2 outputs but 1 references"):
        score_pairs(["a", "b"], ["a"])


def test_paired_comparison_detects_a_seeded_drop_and_respects_the_margin() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0.3, 0.9, 150)
    worse = np.clip(baseline - 0.06 + rng.normal(0, 0.05, 150), 0, 1)
    result = compare_paired(baseline, worse, margin=0.02)
    assert result.regression and result.ci_high < 0 and result.p_value < 1e-6
    assert result.mean_delta == pytest.approx(-0.06, abs=0.02)
    # a real but small drop: significant, yet inside the practical margin -> no regression
    slightly = baseline - 0.01 + rng.normal(0, 0.005, 150)
    small = compare_paired(baseline, slightly, margin=0.02)
    assert small.ci_high < 0 and not small.regression
    improved = compare_paired(baseline, baseline + 0.05, margin=0.02)
    assert improved.improvement and not improved.regression and improved.ci_low == pytest.approx(improved.ci_high)


def test_paired_comparison_false_alarm_rate_on_same_version_samples() -> None:
    """Two noisy samples of the same version, 200 seeded trials: regressions stay rare."""
    rng = np.random.default_rng(11)
    quality = rng.uniform(0.2, 0.9, 120)
    alarms = 0
    for seed in range(200):
        trial = np.random.default_rng(seed)
        a = np.clip(quality + trial.normal(0, 0.08, 120), 0, 1)
        b = np.clip(quality + trial.normal(0, 0.08, 120), 0, 1)
        alarms += compare_paired(a, b, margin=0.0, n_resamples=500, seed=seed).regression
    assert alarms / 200 <= 0.05  # one-sided: about alpha / 2 expected with margin 0


def test_paired_comparison_input_errors_and_ties() -> None:
    with pytest.raises(ValueError, match="must be paired"):
        compare_paired([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 paired items"):
        compare_paired([1, float("nan")], [1, 2])
    tied = compare_paired([0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0])
    assert tied.p_value == 1.0 and tied.mean_delta == 0.0 and not tied.regression


def test_item_means_and_compare_items_pair_by_item() -> None:
    means = item_means(["a", "a", "b"], {"rougeL": np.array([0.2, 0.4, 1.0])})
    assert means == {"a": {"rougeL": pytest.approx(0.3)}, "b": {"rougeL": 1.0}}
    out = compare_items({"a": {"rougeL": 0.5}, "b": {"rougeL": 0.5}}, {"a": {"rougeL": 0.4}}, ["rougeL"])
    assert out == {"rougeL": None}  # one shared item is not a comparison
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metrics("rougeL,meteor")


# --- analyzer end to end -------------------------------------------------------------------------------

ITEMS = [
    ReferenceItem(
        "faq",
        f"q{i}",
        reference=f"The office in city {i} opens at {8 + i % 3} am on weekdays.",
        input=f"When does office {i} open?",
    )
    for i in range(30)
]


def _answers(start, end, version: str, degrade_every: int, first: int, by_id: bool) -> list[dict]:
    rows = []
    for k, (at, item) in enumerate(zip(spread(start, end, len(ITEMS)), ITEMS, strict=True)):
        answer = (
            "I do not know."
            if degrade_every and k % degrade_every == 0
            else item.reference.replace("The office", "Our office")
        )
        row = call_row(at, first + k, prompt="" if by_id else item.input, response=answer, PromptVersion=version)
        rows.append(row)
    return rows


def _tag_item_ids(ch, database, rows) -> None:
    """Spans in otel_traces carrying the item id attribute (what attributes(...) gives a real call)."""
    from llmpulse.agent.store.insert import insert_rows

    spans = [
        {
            "Timestamp": row["Timestamp"],
            "TraceId": row["TraceId"],
            "SpanId": row["SpanId"],
            "SpanName": "eval",
            "ServiceName": row["ServiceName"],
            "SpanAttributes": {ITEM_ID_ATTRIBUTE: item.item_id},
        }
        for row, item in zip(rows, ITEMS, strict=True)
    ]
    insert_rows(ch, database, "otel_traces", spans, settings={})


def test_quality_analyzer_compares_prompt_versions_and_alerts_on_the_regression(ch, database) -> None:
    create_schema(ch, database)
    store_items(ch, database, ITEMS)
    window = Window(NOW - minutes(60), NOW)
    reference = Window(NOW - minutes(60) - timedelta(days=1), NOW - minutes(60))
    v1 = _answers(reference.start, reference.end, "v1", 0, 0, by_id=False)  # matched by exact input
    v2 = _answers(window.start, window.end, "v2", 2, 1000, by_id=True)  # matched by item id, half degraded
    insert_calls(ch, database, v1 + v2)
    _tag_item_ids(ch, database, v2)
    options = {
        "compare_by": "prompt_version",
        "baseline": "v1",
        "candidate": "v2",
        "segment_by": "",
        "metrics": "rougeL,chrf",
        "embeddings": False,
    }

    results = run_analyzer("quality", AnalysisStore(ch, database), window, reference, options)

    assert {r.metric for r in results} == {"rougeL_delta", "chrf_delta"}
    for result in results:
        assert result.alert and result.details["n"] == 30 and result.details["ci_high"] < 0
        assert result.details["baseline"] == "v1" and result.value < -0.2
    scores = ch.query(
        "SELECT Version, count(), uniqExact(ItemId) FROM {db:Identifier}.call_scores WHERE Scorer = 'quality' GROUP BY Version ORDER BY Version",
        parameters={"db": database},
    ).result_rows
    assert scores == [("v1", 30, 30), ("v2", 30, 30)]
    assert ch.query("SELECT count() FROM {db:Identifier}.alerts", parameters={"db": database}).result_rows[0][0] == 2


def test_quality_analyzer_no_alert_for_the_same_version_and_clear_rows_without_references(ch, database) -> None:
    create_schema(ch, database)
    window = Window(NOW - minutes(60), NOW)
    reference = Window(NOW - minutes(120), NOW - minutes(60))
    store = AnalysisStore(ch, database)
    [row] = run_analyzer("quality", store, window, reference, {"embeddings": False})
    assert row.status == "not_enough_data" and "llmpulse references load" in row.summary

    store_items(ch, database, ITEMS)
    insert_calls(
        ch,
        database,
        _answers(reference.start, reference.end, "v1", 0, 0, False)
        + _answers(window.start, window.end, "v1", 0, 500, False),
    )
    results = run_analyzer(
        "quality", store, window, reference, {"embeddings": False, "segment_by": "model", "metrics": "rougeL"}
    )
    assert [(r.metric, r.status, r.alert) for r in results] == [("rougeL_delta", "ok", False)]
    assert results[0].value == 0.0
    details = json.loads(
        ch.query(
            "SELECT Details FROM {db:Identifier}.analysis_results WHERE Status = 'ok'", parameters={"db": database}
        ).result_rows[0][0]
    )
    assert details["n"] == 30 and details["p_value"] == 1.0
