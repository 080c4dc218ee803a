"""Flag rates per segment, current window against reference: Fisher's exact test and the result rows.

Used by the hallucination and prompt-injection analyzers: each scores calls and flags some; the alarm
is a rise of the flagged share over the reference window, tested with a one-sided Fisher exact test
(scipy.stats.fisher_exact) and corrected across segments (Benjamini-Hochberg), and it fires only when
the rise is also larger than a practical margin (a significant 0.2-point rise on a busy service is not
worth a page).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .base import (
    AnalysisResult,
    Window,
    adjust_for_multiple_testing,
    iter_segments,
    not_enough_data,
    result_fields,
)


@dataclass(frozen=True)
class RateComparison:
    n: int
    flagged: int
    rate: float
    n_reference: int
    flagged_reference: int
    reference_rate: float
    difference: float
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_rates(flagged: int, n: int, flagged_reference: int, n_reference: int) -> RateComparison:
    """One-sided Fisher exact test that the current flagged share exceeds the reference share."""
    from scipy.stats import fisher_exact

    if n <= 0 or n_reference <= 0:
        raise ValueError("both windows need at least one call")
    if not (0 <= flagged <= n and 0 <= flagged_reference <= n_reference):
        raise ValueError("flagged counts must lie between 0 and the number of calls")
    table = [[flagged, n - flagged], [flagged_reference, n_reference - flagged_reference]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    rate, reference_rate = flagged / n, flagged_reference / n_reference
    return RateComparison(
        n, flagged, rate, n_reference, flagged_reference, reference_rate, rate - reference_rate, p_value
    )


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
    extra: Any = None,
) -> list[AnalysisResult]:
    """One result per segment: current flagged rate, Fisher p-value, alert after BH and the margin.

    ``current``/``past`` are DataFrames with ``flag_column`` and the segment columns; when they have a
    ``Score`` column its means are in the details too. ``extra(cur, ref)`` may add details (e.g. methods).
    Options used: alpha, margin, min_samples, segment_by.
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
