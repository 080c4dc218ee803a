"""Two versions answering the same items, compared per item: is the candidate worse than the baseline? Pure.

The comparison is on the per-item differences (candidate minus baseline): a paired bootstrap
confidence interval of the mean difference (scipy.stats.bootstrap, BCa) and a Wilcoxon signed-rank
test (scipy.stats.wilcoxon). A regression is declared only when the interval lies entirely below zero
AND the mean drop exceeds a practical margin, so a tiny but "significant" change on a large set does
not page anyone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from llmpulse.analyzers.framework.results import AnalysisResult, result_fields


@dataclass(frozen=True)
class PairedComparison:
    """Candidate versus baseline on the same items, for one metric."""

    metric: str
    n: int
    baseline_mean: float
    candidate_mean: float
    mean_delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    margin: float
    regression: bool
    improvement: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def change_text(self) -> str:
        """The change with its interval and test, as result summaries state it."""
        return (
            f"change {self.mean_delta:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}], Wilcoxon p = {self.p_value:.2g}"
        )


def _bootstrap_mean_ci(deltas: np.ndarray, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if np.ptp(deltas) <= 1e-12:  # every item moved by the same amount: no sampling variability to resample
        return float(deltas.mean()), float(deltas.mean())
    for method in ("BCa", "percentile"):  # BCa can be undefined on heavily tied data; fall back
        interval = bootstrap(
            (deltas,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method, rng=seed
        ).confidence_interval
        if math.isfinite(interval.low) and math.isfinite(interval.high):
            return float(interval.low), float(interval.high)
    return math.nan, math.nan


def _wilcoxon_p(deltas: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if not np.any(deltas != 0):
        return 1.0  # no item changed: nothing to test
    return float(wilcoxon(deltas, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_paired(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    metric: str = "score",
    margin: float = 0.02,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap CI of the mean difference and a Wilcoxon signed-rank p-value.

    ``regression``: the whole interval is below zero and the mean drop is larger than ``margin``;
    ``improvement`` mirrors it. Pairs where either side is NaN are dropped.
    """
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape:
        raise ValueError(f"baseline has {b.size} items but candidate has {c.size}: they must be paired")
    keep = np.isfinite(b) & np.isfinite(c)
    b, c = b[keep], c[keep]
    if b.size < 2:
        raise ValueError(f"need at least 2 paired items to compare, got {b.size}")
    deltas = c - b
    low, high = _bootstrap_mean_ci(deltas, confidence, n_resamples, seed)
    mean = float(deltas.mean())
    return PairedComparison(
        metric=metric,
        n=int(b.size),
        baseline_mean=float(b.mean()),
        candidate_mean=float(c.mean()),
        mean_delta=mean,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=_wilcoxon_p(deltas),
        margin=margin,
        regression=bool(high < 0 and mean < -margin),
        improvement=bool(low > 0 and mean > margin),
    )


def item_means(item_ids: Sequence[str], scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean score per item and metric (several calls answering one item count once, as their mean)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for index, item in enumerate(item_ids):
        per_metric = sums.setdefault(item, {})
        for metric, values in scores.items():
            value = float(values[index])
            if math.isfinite(value):
                per_metric.setdefault(metric, []).append(value)
    return {item: {m: float(np.mean(v)) for m, v in metrics.items()} for item, metrics in sums.items()}


def compare_items(
    baseline: dict[str, dict[str, float]],
    candidate: dict[str, dict[str, float]],
    metrics: Sequence[str],
    **options: Any,
) -> dict[str, PairedComparison | None]:
    """:func:`compare_paired` per metric on the items both sides answered; None where under 2 pairs."""
    out: dict[str, PairedComparison | None] = {}
    for metric in metrics:
        shared = sorted(
            i for i in baseline.keys() & candidate.keys() if metric in baseline[i] and metric in candidate[i]
        )
        if len(shared) < 2:
            out[metric] = None
            continue
        out[metric] = compare_paired(
            [baseline[i][metric] for i in shared], [candidate[i][metric] for i in shared], metric=metric, **options
        )
    return out


def delta_result(
    fields: Mapping[str, Any], comparison: PairedComparison, alpha: float, summary: str, **details: Any
) -> AnalysisResult:
    """The result row of one metric's comparison: the mean change, Wilcoxon's p-value, tested at ``alpha``."""
    return AnalysisResult(
        **result_fields(**fields),
        metric=f"{comparison.metric}_delta",
        value=comparison.mean_delta,
        p_value=comparison.p_value,
        threshold=alpha,
        details={**comparison.as_dict(), **details},
        summary=summary,
    )
