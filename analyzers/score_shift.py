"""Alarm on a rise of per-call scores, current window against reference, without a fixed cut-off.

Why not the flagged share at the model's threshold alone: that threshold is chosen on the labelled
training domains, and a domain whose scores sit higher or lower (long retrieved documents, terse
answers) would read as a permanent alarm or never alarm. Instead:

* the test is one-sided Mann-Whitney U on the scores (``scipy.stats.mannwhitneyu``): are current
  scores stochastically larger than the reference's? It needs no threshold and holds for any
  monotone rescaling of the score;
* the magnitude people read is the share of current calls above the reference window's 90th
  percentile (10 % by construction in the reference, so 25 % means "2.5 times as many doubtful
  answers as usual"), and the practical margin applies to its rise;
* the share flagged at the model's own threshold stays in the result (``value``, ``rate``,
  ``reference_rate``), as the dashboards show it.

Segments are corrected together (Benjamini-Hochberg), as in ``rates``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .base import AnalysisResult, Window, adjust_for_multiple_testing, iter_segments, not_enough_data, result_fields

REFERENCE_QUANTILE = 0.9


def shift_details(scores: np.ndarray, reference: np.ndarray, quantile: float = REFERENCE_QUANTILE) -> dict[str, float]:
    """Mann-Whitney p-value and effect, and the shares above the reference's ``quantile`` of the scores."""
    from scipy.stats import mannwhitneyu

    test = mannwhitneyu(scores, reference, alternative="greater")
    cut = float(np.quantile(reference, quantile))
    above, above_ref = float(np.mean(scores > cut)), float(np.mean(reference > cut))
    return {
        "mannwhitney_p": float(test.pvalue),
        "probability_of_superiority": float(test.statistic) / (len(scores) * len(reference)),
        "reference_cut": cut,
        "reference_quantile": quantile,
        "share_above_reference_cut": above,
        "reference_share_above_cut": above_ref,
        "share_rise": above - above_ref,
    }


def shift_results(
    *,
    analyzer: str,
    version: str,
    metric: str,
    window: Window,
    reference: Window,
    current: Any,
    past: Any,
    options: Mapping[str, Any],
    extra: Callable[[Any, Any], dict[str, Any]] | None = None,
    empty_reason: str = "",
) -> list[AnalysisResult]:
    """One result per segment: flagged share as the value, the rank test as the p-value, alert after BH and margin.

    ``current``/``past`` are DataFrames with ``Score`` and ``Flagged`` columns and the segment columns.
    Options used: alpha, margin (minimum rise of the share above the reference cut), min_samples, segment_by.
    When neither window holds a scored call there is no segment to report: one ``not_enough_data`` row
    for the whole window says so, with ``empty_reason`` (what a call needs to be scored) in its summary.
    """
    alpha, margin, minimum = float(options["alpha"]), float(options["margin"]), int(options["min_samples"])
    results: list[AnalysisResult] = []
    for segment, cur, ref in iter_segments(current, past, options["segment_by"]):
        base = dict(analyzer=analyzer, version=version, window=window, reference=reference, segment=segment)
        if len(cur) < minimum or len(ref) < minimum:
            results.append(
                not_enough_data(**base, metric=metric, n_current=len(cur), n_reference=len(ref), minimum=minimum)
            )
            continue
        scores, reference_scores = cur["Score"].to_numpy(float), ref["Score"].to_numpy(float)
        shift = shift_details(scores, reference_scores)
        flagged, flagged_ref = int(cur["Flagged"].sum()), int(ref["Flagged"].sum())
        rate, reference_rate = flagged / len(cur), flagged_ref / len(ref)
        details = {
            "n": len(cur),
            "flagged": flagged,
            "rate": rate,
            "n_reference": len(ref),
            "flagged_reference": flagged_ref,
            "reference_rate": reference_rate,
            "difference": rate - reference_rate,
            **shift,
            "margin": margin,
            "mean_score": float(scores.mean()),
            "reference_mean_score": float(reference_scores.mean()),
            "test": "one-sided Mann-Whitney U on scores; margin on the share above the reference's 90th percentile",
        }
        details.update(extra(cur, ref) if extra else {})
        results.append(
            AnalysisResult(
                **result_fields(**base),
                metric=metric,
                value=rate,
                p_value=shift["mannwhitney_p"],
                threshold=alpha,
                details=details,
                summary=(
                    f"{shift['share_above_reference_cut']:.1%} of calls score above the reference window's 90th "
                    f"percentile (expected {shift['reference_share_above_cut']:.1%}); {metric} {rate:.1%} "
                    f"({flagged}/{len(cur)}) vs {reference_rate:.1%}, Mann-Whitney p = {shift['mannwhitney_p']:.2g}"
                ),
            )
        )
    if not results:
        row = not_enough_data(
            analyzer=analyzer,
            version=version,
            window=window,
            reference=reference,
            segment={},
            metric=metric,
            n_current=0,
            n_reference=0,
            minimum=minimum,
        )
        row.summary += f"; {empty_reason}" if empty_reason else ""
        results.append(row)
    adjust_for_multiple_testing(results, alpha, also=lambda r: r.details["share_rise"] >= margin)
    return results
