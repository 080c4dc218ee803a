"""Embedding drift: the two-sample tests (seeded statistical properties) and the analyzer on the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from llmpulse.analyzers.drift import analyzer as drift
from llmpulse.analyzers.drift.two_sample import (
    _squared_distances,
    centroid_cosine_distance,
    classifier_test,
    median_bandwidth,
    mmd_permutation_test,
    subsample,
)
from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.results import NOT_ENOUGH_DATA, OK
from llmpulse.analyzers.framework.runner import run_analyzer
from llmpulse.analyzers.framework.windows import windows
from llmpulse.analyzers.io.store import AnalysisStore

from tests.analyzers.framework_helpers import NOW, call_row, create_schema, insert_calls, spread
from tests.conftest import SHARED_DATA


def unit_rows(rng: np.random.Generator, n: int, d: int = 16, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, d))
    x[:, 0] += shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def naive_unbiased_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / bandwidth)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


# -- MMD permutation test -----------------------------------------------------------------------------


def test_mmd_statistic_matches_the_textbook_unbiased_estimator() -> None:
    rng = np.random.default_rng(1)
    x, y = unit_rows(rng, 40), unit_rows(rng, 55, shift=0.5)
    result = mmd_permutation_test(x, y, permutations=50, seed=3)
    bandwidth = median_bandwidth(_squared_distances(np.concatenate([x, y])))
    assert result.bandwidth == pytest.approx(bandwidth, rel=1e-5)
    assert result.mmd2 == pytest.approx(naive_unbiased_mmd2(x, y, bandwidth), abs=2e-6)
    assert (result.n_current, result.n_reference) == (40, 55)


def test_mmd_detects_a_clear_shift_at_the_smallest_p_value() -> None:
    rng = np.random.default_rng(2)
    result = mmd_permutation_test(unit_rows(rng, 80), unit_rows(rng, 80, shift=2.0), permutations=500, seed=0)
    assert result.p_value == pytest.approx(1 / 501)
    assert result.mmd2 > 0.01


def test_mmd_false_positive_rate_is_near_alpha_under_no_drift() -> None:
    """200 seeded null splits: the rate must be near 0.05 (binomial 99.9% range about 0.01-0.11)."""
    rng = np.random.default_rng(3)
    p_values = [
        mmd_permutation_test(unit_rows(rng, 40), unit_rows(rng, 50), permutations=100, seed=i).p_value
        for i in range(200)
    ]
    assert 0.01 <= np.mean(np.array(p_values) < 0.05) <= 0.11
    assert 0.35 <= np.mean(p_values) <= 0.65  # roughly uniform


def test_mmd_is_reproducible_with_a_seed_and_caps_the_sample() -> None:
    rng = np.random.default_rng(4)
    x, y = unit_rows(rng, 300), unit_rows(rng, 200, shift=0.2)
    first = mmd_permutation_test(x, y, permutations=200, seed=9, max_samples=120)
    assert first == mmd_permutation_test(x, y, permutations=200, seed=9, max_samples=120)
    assert (first.n_current, first.n_reference) == (120, 120)
    assert len(subsample(x, 1000, rng)) == 300


def test_mmd_refuses_too_small_samples() -> None:
    with pytest.raises(ValueError, match="at least 2 rows per sample, got 1 and 5"):
        mmd_permutation_test(np.ones((1, 3)), np.ones((5, 3)))


# -- classifier test and centroid distance ------------------------------------------------------------


def test_classifier_false_positive_rate_is_controlled() -> None:
    rng = np.random.default_rng(5)
    p_values = [classifier_test(unit_rows(rng, 40, d=8), unit_rows(rng, 40, d=8), seed=i).p_value for i in range(60)]
    assert np.mean(np.array(p_values) < 0.05) <= 0.12  # Bonferroni over 2 folds: at most alpha, usually below


def test_classifier_separates_shifted_windows() -> None:
    rng = np.random.default_rng(6)
    result = classifier_test(unit_rows(rng, 200), unit_rows(rng, 200, shift=2.0), seed=0)
    assert result.auc > 0.75 and result.p_value < 1e-6
    assert all(a > 0.7 for a in result.fold_aucs)
    assert result.p_value == pytest.approx(min(1.0, 2 * min(result.fold_p_values)))


def test_centroid_cosine_distance() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert centroid_cosine_distance(x, x) == pytest.approx(0.0)
    assert centroid_cosine_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)
    assert np.isnan(centroid_cosine_distance(np.array([[1.0, 0.0], [-1.0, 0.0]]), x))


# -- the drift decision across segments ---------------------------------------------------------------


def _opts(**kw):
    return drift.resolve({"permutations": 500, **kw})


def test_side_results_rows_and_not_enough_data() -> None:
    rng = np.random.default_rng(7)
    window, reference = windows("1h", "7d", end=NOW)
    rows = drift.side_results(
        unit_rows(rng, 60, shift=2.0),
        unit_rows(rng, 60),
        side="prompt",
        segment={"model": "a"},
        window=window,
        reference=reference,
        opts=_opts(),
    )
    assert [r.metric for r in rows] == [
        "prompt_embedding_mmd2",
        "prompt_embedding_classifier_auc",
        "prompt_embedding_centroid_distance",
    ]
    mmd, clf, centroid = rows
    assert mmd.p_value < 0.01 and mmd.details["n_current"] == 60 and mmd.details["permutations"] == 500
    assert clf.value > 0.7 and centroid.p_value is None and centroid.value > 0
    short = drift.side_results(
        unit_rows(rng, 10),
        unit_rows(rng, 60),
        side="response",
        segment={},
        window=window,
        reference=reference,
        opts=_opts(),
    )
    assert [r.status for r in short] == [NOT_ENOUGH_DATA] * 3
    assert short[0].summary == "not enough data: 10 current, 60 reference (minimum 30 per window)"


def test_decide_corrects_across_segments_and_can_require_both_tests() -> None:
    rng = np.random.default_rng(8)
    window, reference = windows("1h", "7d", end=NOW)
    results = []
    for name, shift in [("drifted", 2.0), ("same1", 0.0), ("same2", 0.0)]:
        results += drift.side_results(
            unit_rows(rng, 60, shift=shift),
            unit_rows(rng, 60),
            side="prompt",
            segment={"model": name},
            window=window,
            reference=reference,
            opts=_opts(),
        )
    drift.decide(results, 0.05, "mmd")
    alerts = [(r.segment["model"], r.metric) for r in results if r.alert]
    assert alerts == [("drifted", "prompt_embedding_mmd2")]
    assert all("p_value_adjusted" in r.details for r in results if r.metric.endswith("mmd2"))
    assert "BH-adjusted p" in next(r for r in results if r.alert).summary
    drift.decide(results, 0.05, "both")
    assert [(r.segment["model"], r.alert) for r in results if r.metric.endswith("mmd2")] == [
        ("drifted", True),
        ("same1", False),
        ("same2", False),
    ]


def test_permutations_grow_with_the_number_of_tests() -> None:
    assert drift.permutations_for(500, 4, 0.05) == 500
    assert drift.permutations_for(500, 50, 0.05) == 1999  # 1 / (B + 1) = alpha / (2 k)


def test_bad_options_are_named() -> None:
    with pytest.raises(AnalyzerInputError, match="option sides: choose from prompt, response"):
        drift.resolve({"sides": "prompt,context"})
    with pytest.raises(AnalyzerInputError, match="option permutations: at least 500, got 100"):
        drift.resolve({"permutations": "100"})
    with pytest.raises(AnalyzerInputError, match="option decision"):
        drift.resolve({"decision": "either"})


# -- the analyzer on the embedded store, with real text -----------------------------------------------

needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "halueval_general.jsonl").exists(), reason=f"shared data not found at {SHARED_DATA}"
)


def read_field(name: str, field: str, limit: int) -> list[str]:
    """``limit`` distinct texts in a seeded random order (the files are ordered by source, so slices of
    them are not exchangeable samples)."""
    with (SHARED_DATA / name).open(encoding="utf-8") as handle:
        texts = list(dict.fromkeys(json.loads(line)[field].strip() for line in handle if line.strip()))
    order = np.random.default_rng(0).permutation(len(texts))
    return [texts[i] for i in order[:limit]]


@needs_data
def test_drift_analyzer_finds_the_shifted_segment_and_stores_rows(ch, database, minilm) -> None:
    """Model "a": current prompts are trivia questions (shifted); model "b": same kind as its reference;
    model "c": too few calls. Responses are captured for "b" only."""
    create_schema(ch, database)
    general = read_field("halueval_general.jsonl", "user_query", 210)
    trivia = read_field("halueval_qa_500.jsonl", "question", 40)
    window, reference = windows("1h", "1d", end=NOW)
    rows, index = [], 0

    def add(model: str, texts: list[str], where, responses: bool = False) -> None:
        nonlocal index
        for at, text in zip(spread(where.start, where.end, len(texts)), texts, strict=True):
            rows.append(call_row(at, index, model=model, prompt=text, response=text[::-1] if responses else ""))
            index += 1

    add("a", general[:60], reference)
    add("a", trivia, window)
    add("b", general[60:120], reference, responses=True)
    add("b", general[120:160], window, responses=True)
    add("c", general[160:200], reference)
    add("c", general[200:210], window)
    insert_calls(ch, database, rows)
    store = AnalysisStore(ch, database)

    results = run_analyzer("drift", store, window, reference, {"segment_by": "model", "seed": 1})
    by_key = {(r.segment.get("model"), r.metric): r for r in results}
    a = by_key[("a", "prompt_embedding_mmd2")]
    assert a.status == OK and a.alert and a.p_value < 0.01
    assert a.details["classifier_auc"] > 0.8 and a.details["n_current"] == 40 and a.details["n_reference"] == 60
    assert not by_key[("b", "prompt_embedding_mmd2")].alert
    assert by_key[("c", "prompt_embedding_mmd2")].status == NOT_ENOUGH_DATA
    assert by_key[("b", "response_embedding_mmd2")].status == OK
    assert ("a", "response_embedding_mmd2") not in by_key  # no responses captured: not a segment of that side

    stored = ch.query(
        "SELECT Segment['model'], Metric, Status, Alert FROM {db:Identifier}.analysis_results "
        "WHERE Analyzer = 'drift' AND Metric LIKE '%mmd2' ORDER BY 1, 2",
        parameters={"db": database},
    ).result_rows
    assert stored == [
        ("a", "prompt_embedding_mmd2", "ok", True),
        ("b", "prompt_embedding_mmd2", "ok", False),
        ("b", "response_embedding_mmd2", "ok", False),
        ("c", "prompt_embedding_mmd2", "not_enough_data", False),
    ]
    alerts = ch.query(
        "SELECT Title, Message FROM {db:Identifier}.alerts WHERE Analyzer = 'drift'", parameters={"db": database}
    ).result_rows
    assert alerts == [
        (
            "drift: prompt_embedding_mmd2 (model=a)",
            next(r for r in results if r.alert).summary,
        )
    ]
    cached = ch.query("SELECT count() FROM {db:Identifier}.embeddings", parameters={"db": database}).result_rows
    assert cached[0][0] == len({r["PromptText"] for r in rows} | {r["ResponseText"] for r in rows if r["ResponseText"]})


def test_drift_with_no_calls_says_not_enough_data(ch, database) -> None:
    create_schema(ch, database)
    window, reference = windows("1h", "1d", end=NOW)
    results = run_analyzer("drift", AnalysisStore(ch, database), window, reference, {}, write=False)
    assert {(r.metric, r.status, tuple(r.segment.items())) for r in results} == {
        (f"{side}_embedding_{m}", NOT_ENOUGH_DATA, ())
        for side in ("prompt", "response")
        for m in ("mmd2", "classifier_auc", "centroid_distance")
    }
