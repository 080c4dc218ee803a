"""Operational regressions per segment (service, model, model version): latency, time to first token, error
rate, tokens and cost per request, current window against the reference window.

Each metric is tested in the direction that hurts and alerts only when the change is both significant
(Benjamini-Hochberg across every tested row of the run, false discovery rate ``alpha``) and larger
than a practical margin, so a statistically detectable 2 % slowdown on heavy traffic stays quiet:

* ``latency_p50/p95/p99`` and ``ttft_p50/p95`` (seconds, successful calls): difference of the quantile
  with a percentile-bootstrap confidence interval (scipy.stats.bootstrap, resampling each window) and
  the one-sided bootstrap p-value ``(1 + #{diff* <= 0}) / (1 + B)``; margin: relative increase.
  A quantile q needs ``max(min_samples, 5 / (1 - q))`` calls per window (p95: 100, p99: 500).
  The Mann-Whitney U test of the whole distribution is reported beside it in ``details``.
* ``error_rate``: Fisher's exact test, one-sided (more errors now); margin: absolute increase.
* ``tokens_per_request`` (input + output): Mann-Whitney U, two-sided (fewer tokens can mean truncated
  answers); margin: relative change of the mean either way.
* ``cost_per_request`` (USD): Mann-Whitney U, one-sided; margin: relative increase of the mean.
"""

from __future__ import annotations

import math
from typing import Any

from .framework.errors import AnalyzerInputError
from .framework.options import resolve_options
from .framework.progress import progress
from .framework.results import OK, AnalysisResult, format_number, not_enough_data, result_fields
from .framework.segments import iter_segments
from .framework.statistics import adjust_for_multiple_testing, compare_rates, mann_whitney
from .framework.windows import Window

NAME = "operational"
VERSION = "1"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "segment_by": ["service", "model", "model_version"],
    "min_samples": 30,
    "max_samples": 10000,  # per segment and window, a deterministic sample beyond that
    "bootstrap": 2000,
    "seed": 0,
    "latency_margin": 0.2,  # relative increase of a latency quantile
    "ttft_margin": 0.2,  # relative increase of a time-to-first-token quantile
    "error_rate_margin": 0.01,  # absolute increase of the error rate
    "tokens_margin": 0.2,  # relative change of mean tokens per request
    "cost_margin": 0.2,  # relative increase of mean cost per request
}
COLUMNS = ["SpanId", "LatencySeconds", "TimeToFirstTokenSeconds", "IsError", "InputTokens", "OutputTokens", "CostUSD"]
QUANTILE_METRICS = (
    ("latency", "LatencySeconds", 0.50, "latency_margin"),
    ("latency", "LatencySeconds", 0.95, "latency_margin"),
    ("latency", "LatencySeconds", 0.99, "latency_margin"),
    ("ttft", "TimeToFirstTokenSeconds", 0.50, "ttft_margin"),
    ("ttft", "TimeToFirstTokenSeconds", 0.95, "ttft_margin"),
)


def resolve(options: dict[str, Any]) -> dict[str, Any]:
    opts = resolve_options(DEFAULTS, options)
    for key in ("latency_margin", "ttft_margin", "error_rate_margin", "tokens_margin", "cost_margin"):
        if opts[key] < 0:
            raise AnalyzerInputError(f"option {key}: must be >= 0, got {opts[key]}")
    if opts["bootstrap"] < 500:
        raise AnalyzerInputError(f"option bootstrap: at least 500 resamples, got {opts['bootstrap']}")
    if not 5 <= opts["min_samples"] <= opts["max_samples"]:
        raise AnalyzerInputError("options min_samples and max_samples: need 5 <= min_samples <= max_samples")
    return opts


def analyze(store: Any, window: Window, reference: Window, options: dict[str, Any]) -> list[AnalysisResult]:
    opts = resolve(options)
    query = {
        "columns": COLUMNS,
        "segment_by": opts["segment_by"],
        "limit_per_segment": opts["max_samples"],
        "seed": opts["seed"],
    }
    current = numeric(store.read_calls(window, **query))
    past = numeric(store.read_calls(reference, **query))
    segments = list(iter_segments(current, past, opts["segment_by"])) or [({}, current, past)]
    results: list[AnalysisResult] = []
    for segment, cur, ref in progress(segments, desc=NAME):
        ident = result_fields(analyzer=NAME, version=VERSION, window=window, reference=reference, segment=segment)
        results.extend(segment_results(cur, ref, ident=ident, opts=opts))
    decide(results, opts["alpha"])
    return results


def numeric(frame: Any) -> Any:
    """Nullable columns arrive as objects holding None: make them floats with NaN."""
    import pandas as pd

    frame = frame.copy()
    for column in COLUMNS[1:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def segment_results(cur: Any, ref: Any, *, ident: dict[str, Any], opts: dict[str, Any]) -> list[AnalysisResult]:
    """Every metric's row for one segment (alerts decided later by :func:`decide`)."""
    rows: list[AnalysisResult] = []
    ok_cur, ok_ref = cur[cur["IsError"] == 0], ref[ref["IsError"] == 0]
    for index, (prefix, column, q, margin_key) in enumerate(QUANTILE_METRICS):
        metric = f"{prefix}_p{round(q * 100)}"
        x, y = ok_cur[column].dropna().to_numpy(), ok_ref[column].dropna().to_numpy()
        minimum = max(opts["min_samples"], math.ceil(5 / (1 - q)))
        if min(len(x), len(y)) < minimum:
            rows.append(_short(ident, metric, len(x), len(y), minimum))
            continue
        rows.append(quantile_row(x, y, q, ident=ident, metric=metric, margin=opts[margin_key], opts=opts, seed=index))
    rows.append(error_rate_row(cur, ref, ident=ident, opts=opts))
    for metric, values, alternative, margin_key in (
        ("tokens_per_request", lambda f: f["InputTokens"] + f["OutputTokens"], "two-sided", "tokens_margin"),
        ("cost_per_request", lambda f: f["CostUSD"], "greater", "cost_margin"),
    ):
        x, y = values(ok_cur).dropna().to_numpy(), values(ok_ref).dropna().to_numpy()
        if min(len(x), len(y)) < opts["min_samples"]:
            rows.append(_short(ident, metric, len(x), len(y), opts["min_samples"]))
            continue
        rows.append(mean_row(x, y, ident=ident, metric=metric, alternative=alternative, margin=opts[margin_key]))
    return rows


def _short(ident: dict[str, Any], metric: str, n: int, m: int, minimum: int) -> AnalysisResult:
    window_fields = {
        "analyzer": ident["analyzer"],
        "version": ident["version"],
        "segment": ident["segment"],
        "window": Window(ident["window_start"], ident["window_end"]),
        "reference": Window(ident["reference_start"], ident["reference_end"]),
    }
    return not_enough_data(**window_fields, metric=metric, n_current=n, n_reference=m, minimum=minimum)


def quantile_difference(x: Any, y: Any, q: float, *, resamples: int, seed: int, confidence: float) -> dict[str, float]:
    """Quantile q of current minus reference, its percentile-bootstrap interval and one-sided p-value."""
    import numpy as np
    from scipy.stats import bootstrap

    def statistic(a: Any, b: Any, axis: int = -1) -> Any:
        return np.quantile(a, q, axis=axis) - np.quantile(b, q, axis=axis)

    result = bootstrap(
        (x, y),
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=max(1, 4_000_000 // (len(x) + len(y))),  # bounded memory for big windows
        rng=np.random.default_rng(seed),
    )
    distribution = result.bootstrap_distribution
    return {
        "current": float(np.quantile(x, q)),
        "reference": float(np.quantile(y, q)),
        "difference": float(statistic(x, y)),
        "ci_low": float(result.confidence_interval.low),
        "ci_high": float(result.confidence_interval.high),
        "p_value": (1 + int(np.count_nonzero(distribution <= 0))) / (1 + len(distribution)),
    }


def _relative(current: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if current == 0 else math.inf
    return current / reference - 1.0


def quantile_row(
    x: Any, y: Any, q: float, *, ident: dict[str, Any], metric: str, margin: float, opts: dict[str, Any], seed: int
) -> AnalysisResult:
    found = quantile_difference(
        x, y, q, resamples=opts["bootstrap"], seed=opts["seed"] * 1000 + seed, confidence=1 - opts["alpha"]
    )
    effect, mw_p = mann_whitney(x, y, "greater")
    relative = _relative(found["current"], found["reference"])
    return AnalysisResult(
        **ident,
        metric=metric,
        value=found["current"],
        p_value=found["p_value"],
        threshold=opts["alpha"],
        details={
            "n_current": len(x),
            "n_reference": len(y),
            "reference_value": found["reference"],
            "difference": found["difference"],
            "ci": [found["ci_low"], found["ci_high"]],
            "ci_level": 1 - opts["alpha"],
            "relative_change": relative,
            "margin": margin,
            "practical": relative > margin,
            "test": f"percentile bootstrap of the quantile difference, {opts['bootstrap']} resamples, one-sided",
            "mann_whitney_p_value": mw_p,
            "prob_current_greater": effect,
        },
    )


def error_rate_row(cur: Any, ref: Any, *, ident: dict[str, Any], opts: dict[str, Any]) -> AnalysisResult:
    n, m = len(cur), len(ref)
    if min(n, m) < opts["min_samples"]:
        return _short(ident, "error_rate", n, m, opts["min_samples"])
    errors = compare_rates(int(cur["IsError"].sum()), n, int(ref["IsError"].sum()), m)
    return AnalysisResult(
        **ident,
        metric="error_rate",
        value=errors.rate,
        p_value=errors.p_value,
        threshold=opts["alpha"],
        details={
            "n_current": n,
            "n_reference": m,
            "errors_current": errors.flagged,
            "errors_reference": errors.flagged_reference,
            "reference_value": errors.reference_rate,
            "difference": errors.difference,
            "margin": opts["error_rate_margin"],
            "practical": errors.difference > opts["error_rate_margin"],
            "test": "Fisher exact, one-sided (more errors now)",
        },
    )


def mean_row(x: Any, y: Any, *, ident: dict[str, Any], metric: str, alternative: str, margin: float) -> AnalysisResult:
    effect, p = mann_whitney(x, y, alternative)
    now, before = float(x.mean()), float(y.mean())
    relative = _relative(now, before)
    practical = abs(relative) > margin if alternative == "two-sided" else relative > margin
    return AnalysisResult(
        **ident,
        metric=metric,
        value=now,
        p_value=p,
        details={
            "n_current": len(x),
            "n_reference": len(y),
            "reference_value": before,
            "relative_change": relative,
            "margin": margin,
            "practical": practical,
            "test": f"Mann-Whitney U, {alternative}",
            "prob_current_greater": effect,
        },
    )


def decide(results: list[AnalysisResult], alpha: float) -> None:
    """BH across every tested row of the run; alert = significant and beyond the practical margin."""
    tested = [r for r in results if r.status == OK and r.p_value is not None]
    for row in tested:
        row.threshold = alpha
    adjust_for_multiple_testing(tested, alpha, also=lambda r: bool(r.details["practical"]))
    for row in tested:
        if not row.alert:
            continue
        before = row.details["reference_value"]
        change = row.details.get("relative_change")
        if change is not None:
            how = f"{change:+.0%}" if math.isfinite(change) else "from 0"
            row.severity = "critical" if change > 3 * row.details["margin"] else "warning"
        else:
            how = f"{row.details['difference']:+.1%} points"
            row.severity = "critical" if row.details["difference"] > 5 * row.details["margin"] else "warning"
        row.summary = (
            f"{row.metric} {format_number(row.value)} vs {format_number(before)} before ({how}), "
            f"BH-adjusted p {format_number(row.details['p_value_adjusted'])} < {alpha}, "
            f"{row.details['n_current']} vs {row.details['n_reference']} calls"
        )
