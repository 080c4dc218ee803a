"""``llmpulse analyze quality``: answers scored against reference answers, regressions between versions.

Calls are matched to items of ``reference_answers`` by the ``llmpulse.reference.item_id`` span
attribute (and ``llmpulse.reference.dataset`` when set), else by exact prompt text; each matched call
is scored (:mod:`.metrics`: ROUGE, BLEU, chrF, embedding similarity, exact match) and stored in
``call_scores`` (scorer "quality"). Two ways to compare, both paired by item:

* default: per segment, the items answered in the current window against the same items answered
  in the reference window;
* ``compare_by`` (a segment key such as prompt_version or model_version) with ``baseline`` and
  ``candidate`` values: calls of both windows, the candidate's answers against the baseline's.

Per metric: paired bootstrap CI and Wilcoxon signed-rank p (BH across segments and metrics); an alert
needs the adjusted p below alpha, the whole CI below zero and a mean drop beyond ``margin``.
A call's stored scores are reused while the reference answers, the dataset, the first metric, the
embeddings option and ``compare_by`` are unchanged (they make the scorer version).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.options import resolve_options
from llmpulse.analyzers.framework.results import AnalysisResult, not_enough_data
from llmpulse.analyzers.framework.score_window import CallScorer, Verdict, score_window
from llmpulse.analyzers.framework.segments import SEGMENT_COLUMNS, iter_segments
from llmpulse.analyzers.framework.statistics import adjust_for_multiple_testing
from llmpulse.analyzers.framework.windows import Window
from llmpulse.analyzers.io.scores import CALL_COLUMNS

from .references import DATASET_ATTRIBUTE, ITEM_ID_ATTRIBUTE, ReferenceIndex, ReferenceItem

NAME = "quality"
VERSION = "1"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "margin": 0.02,
    "min_pairs": 20,
    "segment_by": ["service", "model"],
    "dataset": "",
    "metrics": "rougeL,chrf,embedding",
    "compare_by": "",
    "baseline": "",
    "candidate": "",
    "embeddings": True,
    "max_calls": 5000,
    "resamples": 2000,
    "seed": 0,
}
COLUMNS = [*CALL_COLUMNS, "PromptText", "ResponseText"]


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    from .metrics import parse_metrics

    opts = resolve_options(DEFAULTS, options)
    try:
        opts["metrics"] = parse_metrics(opts["metrics"])
    except ValueError as exc:
        raise AnalyzerInputError(f"option metrics: {exc}") from None
    if opts["compare_by"]:
        if opts["compare_by"] not in SEGMENT_COLUMNS:
            raise AnalyzerInputError(
                f"compare_by must be a segment key ({', '.join(SEGMENT_COLUMNS)}), got {opts['compare_by']!r}"
            )
        if not opts["baseline"] or not opts["candidate"]:
            raise AnalyzerInputError(
                "compare_by needs both baseline and candidate, e.g. -o baseline=v1 -o candidate=v2"
            )
        opts["segment_by"] = [k for k in opts["segment_by"] if k != opts["compare_by"]]
    if not opts["embeddings"]:
        opts["metrics"] = [m for m in opts["metrics"] if m != "embedding"] or ["rougeL"]
    return opts


def analyze(store: Any, window: Window, reference: Window, options: Mapping[str, Any]) -> list[AnalysisResult]:
    from llmpulse.analyzers.embeddings import optional_encoder
    from llmpulse.analyzers.io.references import read_items

    opts = _options(options)
    items = read_items(store.client, store.database, opts["dataset"] or None)
    if not items:
        what = f"dataset {opts['dataset']!r}" if opts["dataset"] else "any dataset"
        row = not_enough_data(
            analyzer=NAME,
            version=VERSION,
            window=window,
            reference=reference,
            segment={},
            metric="quality",
            n_current=0,
            minimum=opts["min_pairs"],
        )
        row.summary = f"no reference answers for {what}: load them with `llmpulse references load FILE`"
        return [row]
    scorer = call_scorer(opts, items, optional_encoder(store, opts["embeddings"]))
    current = score_window(store, window, scorer)
    past = score_window(store, reference, scorer)
    if opts["compare_by"]:
        import pandas as pd

        both = pd.concat([current, past], ignore_index=True)
        column = SEGMENT_COLUMNS[opts["compare_by"]]
        baseline = both[both[column].astype(str) == opts["baseline"]]
        candidate = both[both[column].astype(str) == opts["candidate"]]
        results = _compare(window, reference, opts, candidate, baseline)
        for result in results:
            result.details.update(compare_by=opts["compare_by"], baseline=opts["baseline"], candidate=opts["candidate"])
    else:
        results = _compare(window, reference, opts, current, past)
    adjust_for_multiple_testing(results, opts["alpha"], also=lambda r: bool(r.details.get("regression")))
    return results


def _compare(
    window: Window, reference: Window, opts: Mapping[str, Any], candidate: Any, baseline: Any
) -> list[AnalysisResult]:
    from .comparison import compare_items, delta_result, item_means

    results: list[AnalysisResult] = []
    for segment, cand, base in iter_segments(candidate, baseline, opts["segment_by"]):
        fields = dict(analyzer=NAME, version=VERSION, window=window, reference=reference, segment=segment)
        cand_items = item_means(_keys(cand), {m: cand[m].to_numpy() for m in opts["metrics"]}) if len(cand) else {}
        base_items = item_means(_keys(base), {m: base[m].to_numpy() for m in opts["metrics"]}) if len(base) else {}
        shared = len(cand_items.keys() & base_items.keys())
        if shared < opts["min_pairs"]:
            for metric in opts["metrics"]:
                row = not_enough_data(**fields, metric=f"{metric}_delta", n_current=shared, minimum=opts["min_pairs"])
                row.summary = (
                    f"not enough data: {shared} items answered on both sides (minimum {opts['min_pairs']}); "
                    f"{len(cand_items)} candidate, {len(base_items)} baseline items"
                )
                results.append(row)
            continue
        comparisons = compare_items(
            base_items,
            cand_items,
            opts["metrics"],
            margin=opts["margin"],
            n_resamples=opts["resamples"],
            seed=opts["seed"],
        )
        for metric, comparison in comparisons.items():
            if comparison is None:
                results.append(
                    not_enough_data(**fields, metric=f"{metric}_delta", n_current=0, minimum=opts["min_pairs"])
                )
                continue
            summary = (
                f"{metric}: {comparison.candidate_mean:.3f} vs {comparison.baseline_mean:.3f} on "
                f"{comparison.n} paired items, {comparison.change_text()}, margin {comparison.margin}"
            )
            results.append(delta_result(fields, comparison, opts["alpha"], summary))
    return results


def _keys(frame: Any) -> list[str]:
    return [f"{d}\x1f{i}" for d, i in zip(frame["Dataset"], frame["ItemId"], strict=True)]


def call_scorer(opts: Mapping[str, Any], items: Sequence[ReferenceItem], encode: Any) -> CallScorer:
    """The quality scorer for :func:`score_window`: calls matched to a reference item, one column per metric."""
    index = ReferenceIndex(items)
    primary = opts["metrics"][0]
    version_column = SEGMENT_COLUMNS[opts["compare_by"]] if opts["compare_by"] else None
    fingerprint = repr(
        (
            sorted((i.dataset, i.item_id, i.reference, i.input) for i in items),
            opts["dataset"],
            primary,
            bool(opts["embeddings"]),
            opts["compare_by"],
        )
    )

    def score(records: list[dict[str, Any]], attributes: list[dict[str, str]]) -> list[Verdict | None]:
        from .metrics import score_pairs

        matched = [
            index.match(
                item_id=attrs.get(ITEM_ID_ATTRIBUTE, ""),
                prompt=str(record["PromptText"] or ""),
                dataset=attrs.get(DATASET_ATTRIBUTE, "") or opts["dataset"],
            )
            for record, attrs in zip(records, attributes, strict=True)
        ]
        found = [(record, item) for record, item in zip(records, matched, strict=True) if item is not None]
        scores = score_pairs([str(r["ResponseText"]) for r, _ in found], [i.reference for _, i in found], encode)
        verdicts = iter(
            Verdict(
                values={"Dataset": item.dataset, "ItemId": item.item_id, **{m: scores[m][k] for m in opts["metrics"]}},
                score=float(scores[primary][k]),
                flagged=False,
                method=f"reference:{primary}",
                dataset=item.dataset,
                item_id=item.item_id,
                version=str(record[version_column]) if version_column else "",
                signals={m: float(v[k]) for m, v in scores.items() if v[k] == v[k]},
            )
            for k, (record, item) in enumerate(found)
        )
        return [next(verdicts) if item is not None else None for item in matched]

    def cached(row: Mapping[str, Any]) -> dict[str, Any]:
        signals = row["signals"]
        return {
            "Dataset": row["dataset"],
            "ItemId": row["item_id"],
            **{m: signals.get(m, math.nan) for m in opts["metrics"]},
        }

    return CallScorer(
        name=NAME,
        version=f"{VERSION}+{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}",
        read={
            "columns": COLUMNS,
            "segment_by": list(
                dict.fromkeys([*opts["segment_by"], *([opts["compare_by"]] if opts["compare_by"] else [])])
            ),
            "require_text": ("ResponseText",),
            "limit_per_segment": opts["max_calls"],
            "seed": opts["seed"],
        },
        columns={"Dataset": "object", "ItemId": "object", **dict.fromkeys(opts["metrics"], "float64")},
        score=score,
        cached=cached,
        attributes=(ITEM_ID_ATTRIBUTE, DATASET_ATTRIBUTE),
    )
