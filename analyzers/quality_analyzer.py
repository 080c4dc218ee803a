"""``llmpulse analyze quality``: answers scored against reference answers, regressions between versions.

Calls are matched to items of ``reference_answers`` by the ``llmpulse.reference.item_id`` span
attribute (and ``llmpulse.reference.dataset`` when set), else by exact prompt text; each matched call
is scored (analyzers/quality: ROUGE, BLEU, chrF, embedding similarity, exact match) and stored in
``call_scores`` (scorer "quality"). Two ways to compare, both paired by item:

* default: per segment, the items answered in the current window against the same items answered
  in the reference window;
* ``compare_by`` (a segment key such as prompt_version or model_version) with ``baseline`` and
  ``candidate`` values: calls of both windows, the candidate's answers against the baseline's.

Per metric: paired bootstrap CI and Wilcoxon signed-rank p (BH across segments and metrics); an alert
needs the adjusted p below alpha, the whole CI below zero and a mean drop beyond ``margin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    SEGMENT_COLUMNS,
    AnalysisResult,
    AnalyzerInputError,
    Window,
    adjust_for_multiple_testing,
    iter_segments,
    not_enough_data,
    resolve_options,
    result_fields,
)

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
COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ServiceName",
    "RequestModel",
    "ModelVersion",
    "PromptVersion",
    "PromptText",
    "ResponseText",
]


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    from .quality import parse_metrics

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
    from .embeddings import optional_encoder
    from .references import ReferenceIndex, read_items

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
    index = ReferenceIndex(items)
    encode = optional_encoder(store, opts["embeddings"])
    current = score_window(store, window, opts, index, encode)
    past = score_window(store, reference, opts, index, encode)
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
    from .quality import compare_items, item_means

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
            results.append(
                AnalysisResult(
                    **result_fields(**fields),
                    metric=f"{metric}_delta",
                    value=comparison.mean_delta,
                    p_value=comparison.p_value,
                    threshold=opts["alpha"],
                    details=comparison.as_dict(),
                    summary=(
                        f"{metric}: {comparison.candidate_mean:.3f} vs {comparison.baseline_mean:.3f} on "
                        f"{comparison.n} paired items, change {comparison.mean_delta:+.3f} "
                        f"[{comparison.ci_low:+.3f}, {comparison.ci_high:+.3f}], Wilcoxon p = {comparison.p_value:.2g}, "
                        f"margin {comparison.margin}"
                    ),
                )
            )
    return results


def _keys(frame: Any) -> list[str]:
    return [f"{d}\x1f{i}" for d, i in zip(frame["Dataset"], frame["ItemId"], strict=True)]


def score_window(store: Any, window: Window, opts: Mapping[str, Any], index: Any, encode: Any) -> Any:
    """Calls of the window matched to a reference item, with one column per metric; scores stored."""
    from .call_scores import ScoreRow, call_fields, span_attributes, write_scores
    from .quality import score_pairs
    from .references import DATASET_ATTRIBUTE, ITEM_ID_ATTRIBUTE

    segment_by = list(dict.fromkeys([*opts["segment_by"], *([opts["compare_by"]] if opts["compare_by"] else [])]))
    frame = store.read_calls(
        window,
        COLUMNS,
        segment_by=segment_by,
        require_text=("ResponseText",),
        limit_per_segment=opts["max_calls"],
        seed=opts["seed"],
    )
    empty = frame.iloc[0:0].assign(Dataset=[], ItemId=[], **{m: [] for m in opts["metrics"]})
    if not len(frame):
        return empty
    attributes = span_attributes(store.client, store.database, window, [ITEM_ID_ATTRIBUTE, DATASET_ATTRIBUTE])
    matched, items = [], []
    for position, record in enumerate(frame.to_dict("records")):
        attrs = attributes.get(str(record["SpanId"]), {})
        item = index.match(
            item_id=attrs.get(ITEM_ID_ATTRIBUTE, ""),
            prompt=str(record["PromptText"] or ""),
            dataset=attrs.get(DATASET_ATTRIBUTE, "") or opts["dataset"],
        )
        if item is not None:
            matched.append(position)
            items.append(item)
    if not matched:
        return empty
    scored = frame.iloc[matched].copy()
    scores = score_pairs([str(t) for t in scored["ResponseText"]], [i.reference for i in items], encode)
    scored["Dataset"] = [i.dataset for i in items]
    scored["ItemId"] = [i.item_id for i in items]
    for metric in opts["metrics"]:
        scored[metric] = scores[metric]
    primary = opts["metrics"][0]
    version_column = SEGMENT_COLUMNS[opts["compare_by"]] if opts["compare_by"] else None
    rows = [
        ScoreRow(
            **call_fields(record),
            scorer=NAME,
            scorer_version=VERSION,
            score=float(scores[primary][k]),
            flagged=False,
            method=f"reference:{primary}",
            dataset=item.dataset,
            item_id=item.item_id,
            version=str(record[version_column]) if version_column else "",
            signals={m: float(v[k]) for m, v in scores.items() if v[k] == v[k]},
        )
        for k, (record, item) in enumerate(zip(scored.to_dict("records"), items, strict=True))
    ]
    write_scores(store.client, store.database, rows)
    return scored
