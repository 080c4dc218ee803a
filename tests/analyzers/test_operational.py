"""Operational regressions: seeded statistical checks of each test, the decision rule, and the store shell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from llmpulse.analyzers import operational as op
from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.results import NOT_ENOUGH_DATA, OK, result_fields
from llmpulse.analyzers.framework.runner import run_analyzer
from llmpulse.analyzers.framework.windows import windows
from llmpulse.analyzers.io.store import AnalysisStore

from .framework_helpers import NOW, call_row, create_schema, insert_calls, spread

WINDOW, REFERENCE = windows("1h", "1d", end=NOW)
IDENT = result_fields(analyzer="operational", version="1", window=WINDOW, reference=REFERENCE, segment={"model": "m"})


def frame(
    rng: np.random.Generator,
    n: int,
    *,
    latency: float = 1.0,
    error_rate: float = 0.0,
    tokens: float = 300,
    cost: float = 0.001,
    ttft: bool = True,
) -> pd.DataFrame:
    """n calls: lognormal latencies with the given median, Bernoulli errors, Poisson tokens."""
    lat = latency * rng.lognormal(0.0, 0.4, n)
    return pd.DataFrame(
        {
            "SpanId": [f"{i:016x}" for i in range(n)],
            "LatencySeconds": lat,
            "TimeToFirstTokenSeconds": lat * 0.2 if ttft else np.full(n, np.nan),
            "IsError": (rng.random(n) < error_rate).astype(int),
            "InputTokens": rng.poisson(tokens * 0.8, n).astype(float),
            "OutputTokens": rng.poisson(tokens * 0.2, n).astype(float),
            "CostUSD": cost * rng.lognormal(0.0, 0.3, n),
        }
    )


def rows_by_metric(cur: pd.DataFrame, ref: pd.DataFrame, **options) -> dict:
    rows = op.segment_results(cur, ref, ident=IDENT, opts=op.resolve({"bootstrap": 1000, **options}))
    op.decide(rows, 0.05)
    return {r.metric: r for r in rows}


def test_quantile_difference_finds_a_slowdown_and_not_a_same_distribution() -> None:
    rng = np.random.default_rng(0)
    slow = op.quantile_difference(
        1.5 * rng.lognormal(0, 0.4, 400), rng.lognormal(0, 0.4, 600), 0.5, resamples=1000, seed=1, confidence=0.95
    )
    assert slow["difference"] > 0.3 and slow["ci_low"] > 0 and slow["p_value"] == pytest.approx(1 / 1001)
    same = op.quantile_difference(
        rng.lognormal(0, 0.4, 400), rng.lognormal(0, 0.4, 600), 0.5, resamples=1000, seed=1, confidence=0.95
    )
    assert same["ci_low"] < 0 < same["ci_high"] and same["p_value"] > 0.05


def test_bootstrap_p_value_false_positive_rate_near_alpha() -> None:
    rng = np.random.default_rng(1)
    p = [
        op.quantile_difference(
            rng.lognormal(0, 0.5, 150), rng.lognormal(0, 0.5, 150), 0.5, resamples=500, seed=i, confidence=0.95
        )["p_value"]
        for i in range(120)
    ]
    assert np.mean(np.array(p) < 0.05) <= 0.11  # 120 null comparisons; nominal 0.05


def test_a_latency_and_error_regression_alerts_and_a_steady_segment_does_not() -> None:
    rng = np.random.default_rng(2)
    rows = rows_by_metric(frame(rng, 600, latency=1.6, error_rate=0.08), frame(rng, 2000, error_rate=0.01))
    assert rows["latency_p50"].alert and rows["latency_p95"].alert
    assert rows["latency_p50"].details["relative_change"] == pytest.approx(0.6, abs=0.12)
    assert rows["error_rate"].alert and rows["error_rate"].details["errors_current"] > 25
    assert rows["latency_p50"].summary.startswith("latency_p50 ")
    assert "BH-adjusted p" in rows["error_rate"].summary and "points" in rows["error_rate"].summary
    assert rows["latency_p99"].status == OK  # 600 and 2000 calls: enough for p99 (500)
    assert not rows["tokens_per_request"].alert and not rows["cost_per_request"].alert
    steady = rows_by_metric(frame(rng, 600), frame(rng, 2000))
    assert not any(r.alert for r in steady.values())


def test_significant_but_small_changes_stay_quiet() -> None:
    """A 5 % slowdown on heavy traffic is detectable but below the 20 % margin."""
    rng = np.random.default_rng(3)
    rows = rows_by_metric(frame(rng, 8000, latency=1.05), frame(rng, 8000))
    p50 = rows["latency_p50"]
    assert p50.details["p_value_adjusted"] < 0.05 and not p50.details["practical"] and not p50.alert
    loud = rows_by_metric(frame(rng, 8000, latency=1.05), frame(rng, 8000), latency_margin=0.01)
    assert loud["latency_p50"].alert


def test_token_drop_is_caught_two_sided_and_cost_rise_one_sided() -> None:
    rng = np.random.default_rng(4)
    rows = rows_by_metric(frame(rng, 300, tokens=150, cost=0.002), frame(rng, 300))
    assert rows["tokens_per_request"].alert and rows["tokens_per_request"].details["relative_change"] < -0.4
    assert rows["cost_per_request"].alert and rows["cost_per_request"].severity == "critical"  # +100 % > 3 x 20 %
    cheaper = rows_by_metric(frame(rng, 300, cost=0.0005), frame(rng, 300))
    assert not cheaper["cost_per_request"].alert and cheaper["cost_per_request"].p_value > 0.5


def test_small_windows_and_missing_ttft_give_not_enough_data() -> None:
    rng = np.random.default_rng(5)
    rows = rows_by_metric(frame(rng, 120, ttft=False), frame(rng, 120))
    assert rows["latency_p50"].status == OK and rows["latency_p95"].status == OK
    assert rows["latency_p99"].status == NOT_ENOUGH_DATA and rows["latency_p99"].details["minimum"] == 500
    assert rows["ttft_p50"].status == NOT_ENOUGH_DATA and rows["ttft_p50"].details["n_current"] == 0
    tiny = rows_by_metric(frame(rng, 10), frame(rng, 120))
    assert {m: r.status for m, r in tiny.items()} == {m: NOT_ENOUGH_DATA for m in tiny}


def test_errors_are_left_out_of_latency() -> None:
    rng = np.random.default_rng(6)
    cur = frame(rng, 400)
    cur.loc[:99, "IsError"] = 1
    cur.loc[:99, "LatencySeconds"] = 100.0  # timeouts: counted in error_rate, not in the latency quantiles
    rows = rows_by_metric(cur, frame(rng, 400))
    assert rows["latency_p95"].details["n_current"] == 300 and not rows["latency_p95"].alert
    assert rows["error_rate"].alert


def test_options_are_checked() -> None:
    with pytest.raises(AnalyzerInputError, match="option latency_margin: must be >= 0"):
        op.resolve({"latency_margin": -1})
    with pytest.raises(AnalyzerInputError, match="option bootstrap: at least 500"):
        op.resolve({"bootstrap": 10})


def test_operational_analyzer_on_the_store(ch, database) -> None:
    create_schema(ch, database)
    rng = np.random.default_rng(7)
    rows, i = [], 0
    for model, slow in (("fast", 1.0), ("slow", 2.0)):
        for where, factor, error_every in ((REFERENCE, 1.0, 50), (WINDOW, slow, 50 if slow == 1.0 else 5)):
            for k, at in enumerate(spread(where.start, where.end, 300)):
                latency = factor * rng.lognormal(-1.0, 0.3)
                rows.append(
                    call_row(
                        at,
                        i,
                        model=model,
                        DurationNs=int(latency * 1e9),
                        InputTokens=int(rng.poisson(100)),
                        OutputTokens=int(rng.poisson(20)),
                        CostUSD=float(0.0002 * rng.lognormal(0, 0.2)),
                        StatusCode="Error" if k % error_every == 0 else "Ok",
                    )
                )
                i += 1
    insert_calls(ch, database, rows)
    results = run_analyzer(
        "operational", AnalysisStore(ch, database), WINDOW, REFERENCE, {"segment_by": "model", "bootstrap": 500}
    )
    alerts = sorted((r.segment["model"], r.metric) for r in results if r.alert)
    assert alerts == [("slow", "error_rate"), ("slow", "latency_p50"), ("slow", "latency_p95")]
    stored = ch.query(
        "SELECT Segment['model'], Metric FROM {db:Identifier}.alerts WHERE Analyzer = 'operational' ORDER BY 1, 2",
        parameters={"db": database},
    ).result_rows
    assert stored == alerts
    count = ch.query("SELECT count() FROM {db:Identifier}.analysis_results", parameters={"db": database})
    assert count.result_rows[0][0] == len(results) == 2 * 8
