"""Alarms on per-call scores, per segment, current window against reference: two tests, one row shape.

Used by the scorers (hallucination, prompt injection): each scores calls and flags some.

* :func:`rate_results` (prompt injection): the alarm is a rise of the flagged share over the
  reference window, tested with a one-sided Fisher exact test (scipy.stats.fisher_exact).
* :func:`shift_results` (hallucination): a rise of the scores themselves, without a fixed cut-off.
  Why not the flagged share at the model's threshold alone: that threshold is chosen on the labelled
  training domains, and a domain whose scores sit higher or lower (long retrieved documents, terse
  answers) would read as a permanent alarm or never alarm. Instead the test is one-sided Mann-Whitney
  U on the scores (are current scores stochastically larger than the reference's? it needs no
  threshold and holds for any monotone rescaling of the score); the magnitude people read is the
  share of current calls above the reference window's 90th percentile (10 % by construction in the
  reference, so 25 % means "2.5 times as many doubtful answers as usual"), and the practical margin
  applies to its rise; the share flagged at the model's own threshold stays in the result
  (``value``, ``rate``, ``reference_rate``), as the dashboards show it.

Both correct across segments (Benjamini-Hochberg) and fire only when the rise is also larger than a
practical margin (a significant 0.2-point rise on a busy service is not worth a page).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .results import AnalysisResult, not_enough_data, result_fields
from .segments import iter_segments
from .statistics import adjust_for_multiple_testing, compare_rates, shift_details
from .windows import Window

Extra = Callable[[Any, Any], dict[str, Any]]


def rate_results(
    *,
    analyzer: str,
    version: str,
    metric: str,
    window: Window,
    reference: Window,
    current: Any,
    past: Any,
    options: Mapping[str, Any],
    flag_column: str = "Flagged",
    extra: Extra | None = None,
) -> list[AnalysisResult]:
    """One result per segment: current flagged rate, Fisher p-value, alert after BH and the margin.

    ``current``/``past`` are DataFrames with ``flag_column`` and the segment columns; when they have a
    ``Score`` column its means are in the details too. ``extra(cur, ref)`` may add details (e.g. methods).
    Options used: alpha, margin, min_samples, segment_by.
    """
    alpha, margin = float(options["alpha"]), float(options["margin"])
    results: list[AnalysisResult] = []
    ident = dict(analyzer=analyzer, version=version, window=window, reference=reference)
    for base, cur, ref in _tested_segments(results, ident, metric, current, past, options):
        comparison = compare_rates(int(cur[flag_column].sum()), len(cur), int(ref[flag_column].sum()), len(ref))
        details = {**comparison.as_dict(), "margin": margin}
        if "Score" in cur.columns:
            details["mean_score"] = float(cur["Score"].mean())
            details["reference_mean_score"] = float(ref["Score"].mean())
        details.update(extra(cur, ref) if extra else {})
        results.append(
            AnalysisResult(
                **result_fields(**base),
                metric=metric,
                value=comparison.rate,
                p_value=comparison.p_value,
                threshold=alpha,
                details=details,
                summary=(
                    f"{metric} {comparison.rate:.1%} ({comparison.flagged}/{comparison.n}) vs "
                    f"{comparison.reference_rate:.1%} ({comparison.flagged_reference}/{comparison.n_reference}) "
                    f"in the reference window, p = {comparison.p_value:.2g}"
                ),
            )
        )
    adjust_for_multiple_testing(results, alpha, also=lambda r: r.details["difference"] >= margin)
    return results


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
    extra: Extra | None = None,
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
    ident = dict(analyzer=analyzer, version=version, window=window, reference=reference)
    for base, cur, ref in _tested_segments(results, ident, metric, current, past, options):
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
        row = not_enough_data(**ident, segment={}, metric=metric, n_current=0, n_reference=0, minimum=minimum)
        row.summary += f"; {empty_reason}" if empty_reason else ""
        results.append(row)
    adjust_for_multiple_testing(results, alpha, also=lambda r: r.details["share_rise"] >= margin)
    return results


def _tested_segments(
    results: list[AnalysisResult],
    ident: Mapping[str, Any],
    metric: str,
    current: Any,
    past: Any,
    options: Mapping[str, Any],
) -> Iterator[tuple[dict[str, Any], Any, Any]]:
    """(row identity, current rows, reference rows) of each segment with ``min_samples`` calls in both windows.

    A segment with fewer gets its ``not_enough_data`` row appended to ``results`` here, in segment order.
    """
    minimum = int(options["min_samples"])
    for segment, cur, ref in iter_segments(current, past, options["segment_by"]):
        base = {**ident, "segment": segment}
        if len(cur) < minimum or len(ref) < minimum:
            results.append(
                not_enough_data(**base, metric=metric, n_current=len(cur), n_reference=len(ref), minimum=minimum)
            )
            continue
        yield base, cur, ref
