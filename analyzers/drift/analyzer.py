"""``llmpulse analyze drift``: has what users ask (or what the model answers) changed, per segment?

For each side (prompt, response) and segment, the current window's texts and the reference window's
texts are embedded (all-MiniLM-L6-v2, cached) and compared with the tests of :mod:`.two_sample`:

* ``<side>_embedding_mmd2`` - the alarm row: :func:`two_sample_test` (MMD^2 aggregated over Gaussian
  bandwidths with counts of current texts among the most isolated ones, one permutation test; the row's
  value stays the median-bandwidth MMD^2, its p-value is the aggregate's). Its alert is decided on the
  Benjamini-Hochberg adjusted p-value across every segment and side tested in the run (false
  discovery rate ``alpha``), so adding segments does not multiply false alarms. With
  ``decision="both"`` the classifier test must also be significant after the same correction.
* ``<side>_embedding_classifier_auc`` - the domain classifier's held-out AUC and p-value (never alerts).
* ``<side>_embedding_centroid_distance`` - centroid cosine distance, a magnitude without a test.

A segment with fewer than ``min_samples`` texts in either window gets explicit "not_enough_data" rows.
Windows larger than ``max_samples`` are sub-sampled in the query (a deterministic hash of the span id
and ``seed``), so a run's cost is bounded whatever the traffic.
"""

from __future__ import annotations

from typing import Any

from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.options import resolve_options
from llmpulse.analyzers.framework.progress import progress
from llmpulse.analyzers.framework.results import OK, AnalysisResult, format_number, not_enough_data, result_fields
from llmpulse.analyzers.framework.segments import iter_segments
from llmpulse.analyzers.framework.statistics import adjust_for_multiple_testing
from llmpulse.analyzers.framework.windows import Window

NAME = "drift"
VERSION = "1"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "segment_by": ["service", "model"],
    "sides": "prompt,response",
    "permutations": 500,
    "max_samples": 2000,
    "min_samples": 30,
    "seed": 0,
    "decision": "mmd",  # or "both": MMD and classifier must both be significant
}
SIDES = {"prompt": "PromptText", "response": "ResponseText"}


def resolve(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults plus the given options, checked (AnalyzerInputError names the bad one)."""
    opts = resolve_options(DEFAULTS, options)
    sides = [s.strip() for s in str(opts["sides"]).split(",") if s.strip()]
    if not sides or any(s not in SIDES for s in sides):
        raise AnalyzerInputError(
            f"option sides: choose from {', '.join(SIDES)} (comma-separated), got {opts['sides']!r}"
        )
    opts["sides"] = list(dict.fromkeys(sides))
    if opts["decision"] not in ("mmd", "both"):
        raise AnalyzerInputError(f"option decision: 'mmd' or 'both', got {opts['decision']!r}")
    if opts["permutations"] < 500:  # p-value resolution 0.002; fewer makes BH across segments toothless
        raise AnalyzerInputError(f"option permutations: at least 500, got {opts['permutations']}")
    if not 5 <= opts["min_samples"] <= opts["max_samples"]:
        raise AnalyzerInputError(
            f"options min_samples and max_samples: need 5 <= min_samples <= max_samples, "
            f"got {opts['min_samples']} and {opts['max_samples']}"
        )
    return opts


def analyze(store: Any, window: Window, reference: Window, options: dict[str, Any]) -> list[AnalysisResult]:
    """Read both windows' texts, embed them (cached in the store), test every side and segment."""
    from llmpulse.analyzers.embeddings import Embedder

    opts = resolve(options)
    embedder = Embedder(store)
    pairs = []  # (side, segment, current vectors, reference vectors)
    for side in opts["sides"]:
        column = SIDES[side]
        query = {
            "columns": ["SpanId", column],
            "segment_by": opts["segment_by"],
            "require_text": [column],
            "limit_per_segment": opts["max_samples"],
            "seed": opts["seed"],
        }
        current = store.read_calls(window, **query).reset_index(drop=True)
        past = store.read_calls(reference, **query).reset_index(drop=True)
        vectors = embedder.encode(list(current[column]) + list(past[column]))
        current_vectors, past_vectors = vectors[: len(current)], vectors[len(current) :]
        segments = list(iter_segments(current, past, opts["segment_by"]))
        if not segments:  # no text at all in either window: say so rather than return nothing
            segments = [({}, current, past)]
        for segment, cur, ref in segments:
            pairs.append((side, segment, current_vectors[cur.index.to_numpy()], past_vectors[ref.index.to_numpy()]))
    tested = sum(1 for *_, x, y in pairs if min(len(x), len(y)) >= opts["min_samples"])
    opts = {**opts, "permutations": permutations_for(opts["permutations"], tested, opts["alpha"])}
    results: list[AnalysisResult] = []
    for side, segment, x, y in progress(pairs, desc="drift"):
        results.extend(side_results(x, y, side=side, segment=segment, window=window, reference=reference, opts=opts))
    decide(results, opts["alpha"], opts["decision"])
    return results


def permutations_for(requested: int, tests: int, alpha: float) -> int:
    """Enough permutations that one drifted test among ``tests`` can pass the BH cut-off.

    A permutation p-value is at least 1 / (B + 1) and BH compares the smallest of k p-values with
    alpha / k, so B + 1 >= 2 k / alpha keeps an alarm possible (with margin) however many segments.
    """
    import math

    return max(requested, math.ceil(2 * max(tests, 1) / alpha) - 1)


def side_results(
    current: Any,
    past: Any,
    *,
    side: str,
    segment: dict[str, str],
    window: Window,
    reference: Window,
    opts: dict[str, Any],
) -> list[AnalysisResult]:
    """The three rows of one side and segment from its two embedding matrices (pure computation).

    The alert flags are left False here: :func:`decide` sets them once every segment is tested.
    """
    from .two_sample import centroid_cosine_distance, classifier_test, two_sample_test

    ident = result_fields(analyzer=NAME, version=VERSION, window=window, reference=reference, segment=segment)
    metrics = [f"{side}_embedding_{m}" for m in ("mmd2", "classifier_auc", "centroid_distance")]
    n, m = len(current), len(past)
    if min(n, m) < opts["min_samples"]:
        base = {"analyzer": NAME, "version": VERSION, "window": window, "reference": reference, "segment": segment}
        return [
            not_enough_data(**base, metric=metric, n_current=n, n_reference=m, minimum=opts["min_samples"])
            for metric in metrics
        ]
    mmd = two_sample_test(
        current, past, permutations=opts["permutations"], seed=opts["seed"], max_samples=opts["max_samples"]
    )
    clf = classifier_test(current, past, seed=opts["seed"], max_samples=opts["max_samples"])
    distance = centroid_cosine_distance(current, past)
    sizes = {"n_current": n, "n_reference": m, "max_samples": opts["max_samples"]}
    return [
        AnalysisResult(
            **ident,
            metric=metrics[0],
            value=mmd.mmd2,
            p_value=mmd.p_value,
            threshold=opts["alpha"],
            details={
                **sizes,
                "test": "aggregated permutation test: MMD^2 (Gaussian, 1x and 4x median bandwidth) and "
                "isolated-text counts (kNN tails), min-p recalibrated",
                "permutations": mmd.permutations,
                "bandwidth": mmd.bandwidth,
                "statistic": mmd.statistic,
                "components": dict(zip(mmd.components, mmd.component_values, strict=True)),
                "component_p_values": dict(zip(mmd.components, mmd.component_p_values, strict=True)),
                "classifier_auc": clf.auc,
                "classifier_p_value": clf.p_value,
                "centroid_cosine_distance": distance,
            },
        ),
        AnalysisResult(
            **ident,
            metric=metrics[1],
            value=clf.auc,
            p_value=clf.p_value,
            threshold=opts["alpha"],
            details={
                **sizes,
                "test": "logistic regression, 2-fold cross-fitting, one-sided Mann-Whitney per fold, Bonferroni",
                "fold_aucs": list(clf.fold_aucs),
                "fold_p_values": list(clf.fold_p_values),
            },
        ),
        AnalysisResult(**ident, metric=metrics[2], value=distance, details={**sizes, "test": "none (magnitude)"}),
    ]


def decide(results: list[AnalysisResult], alpha: float, decision: str = "mmd") -> None:
    """Set the alert flags: BH across all MMD rows of the run; the classifier rows are corrected too."""
    mmd_rows = [r for r in results if r.metric.endswith("_mmd2") and r.status == OK]
    classifier_rows = [r for r in results if r.metric.endswith("_classifier_auc") and r.status == OK]
    adjust_for_multiple_testing(classifier_rows, alpha)
    classifier_adjusted = {
        (r.metric.split("_")[0], tuple(sorted(r.segment.items()))): r.details["p_value_adjusted"]
        for r in classifier_rows
    }
    for row in classifier_rows:
        row.alert = False  # a second opinion, reported; the MMD row carries the alarm

    def classifier_agrees(row: AnalysisResult) -> bool:
        key = (row.metric.split("_")[0], tuple(sorted(row.segment.items())))
        return decision == "mmd" or classifier_adjusted.get(key, 1.0) < alpha

    adjust_for_multiple_testing(mmd_rows, alpha, also=classifier_agrees)
    for row in mmd_rows:
        side = row.metric.split("_")[0]
        p_adj = row.details["p_value_adjusted"]
        row.details["decision"] = decision
        if row.alert:
            row.summary = (
                f"{side} embeddings drifted: MMD^2 {format_number(row.value)}, BH-adjusted p "
                f"{format_number(p_adj)} < {alpha} (classifier AUC {format_number(row.details['classifier_auc'])}, "
                f"{row.details['n_current']} vs {row.details['n_reference']} texts)"
            )
