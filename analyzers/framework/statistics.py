"""The tests analyzers share: Benjamini-Hochberg across a run, Fisher on flagged shares, Mann-Whitney on scores.

Pure functions on counts and arrays; scipy is imported inside them so that importing this module stays
cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .results import OK, AnalysisResult

if TYPE_CHECKING:
    import numpy as np

REFERENCE_QUANTILE = 0.9


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (scipy.stats.false_discovery_control); controls the false discovery rate.

    Used across the segments (and prompt/response sides) of one analyzer run: with k segments tested at
    alpha each, a plain per-test cut-off would raise a false alarm in about k * alpha of runs.
    """
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(p) for p in false_discovery_control([float(p) for p in p_values], method="bh")]


def adjust_for_multiple_testing(
    results: Sequence[AnalysisResult], alpha: float, *, also: Callable[[AnalysisResult], bool] | None = None
) -> None:
    """Replace the alert flag of tested results by a BH decision at ``alpha`` (in place).

    Each result keeps its raw ``p_value``; ``details["p_value_adjusted"]`` records the BH value and
    ``details["correction"]`` the method. Results without a p-value (not tested) are left alone.
    ``also`` adds a condition (e.g. a practical margin) that must hold as well for an alert.
    """
    tested = [r for r in results if r.status == OK and r.p_value is not None]
    adjusted = benjamini_hochberg([r.p_value for r in tested])  # type: ignore[misc]
    for result, p_adj in zip(tested, adjusted, strict=True):
        result.details["p_value_adjusted"] = p_adj
        result.details["correction"] = f"benjamini-hochberg over {len(tested)} tests"
        result.alert = p_adj < alpha and (also is None or bool(also(result)))


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


def mann_whitney(x: Any, y: Any, alternative: str) -> tuple[float, float]:
    """(P(current > reference) + 0.5 P(tie), p-value): the common-language effect size and the U test."""
    from scipy.stats import mannwhitneyu

    test = mannwhitneyu(x, y, alternative=alternative)
    return float(test.statistic) / (len(x) * len(y)), float(test.pvalue)


def shift_details(scores: np.ndarray, reference: np.ndarray, quantile: float = REFERENCE_QUANTILE) -> dict[str, float]:
    """Mann-Whitney p-value and effect, and the shares above the reference's ``quantile`` of the scores."""
    import numpy as np

    superiority, p_value = mann_whitney(scores, reference, "greater")
    cut = float(np.quantile(reference, quantile))
    above, above_ref = float(np.mean(scores > cut)), float(np.mean(reference > cut))
    return {
        "mannwhitney_p": p_value,
        "probability_of_superiority": superiority,
        "reference_cut": cut,
        "reference_quantile": quantile,
        "share_above_reference_cut": above,
        "reference_share_above_cut": above_ref,
        "share_rise": above - above_ref,
    }
