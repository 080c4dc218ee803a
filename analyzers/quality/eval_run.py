"""Eval runs: a golden dataset through an instrumented function, scored, compared with a baseline version.

``llmpulse eval --dataset NAME --target package.module:function --version V [--baseline V0]`` calls the
function once per reference item (with the item's input, and ``context=`` when the function takes
it), inside ``llmpulse.agent.attributes(...)`` so the spans its ``@observe`` records carry the item id,
the dataset and the version. Each output is scored against its reference (:mod:`.metrics`) and
stored in ``call_scores`` (scorer "eval", Version = V). With a baseline version already evaluated on
the same dataset, each metric is compared item by item (paired bootstrap CI, Wilcoxon, margin) and
written to ``analysis_results`` (analyzer "quality_eval"), alerts included, so a new model or prompt
version can be checked before it ships.
"""

from __future__ import annotations

import importlib
import inspect
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .references import DATASET_ATTRIBUTE, ITEM_ID_ATTRIBUTE, ReferenceItem

NAME = "quality_eval"
VERSION = "1"
RUN_ATTRIBUTE = "llmpulse.eval.run_id"
VERSION_ATTRIBUTE = "llmpulse.eval.version"


@dataclass
class EvalOutcome:
    """One item's run: the output text, or the error the target raised."""

    item: ReferenceItem
    output: str = ""
    error: str = ""
    trace_id: str = ""
    span_id: str = ""
    seconds: float = 0.0


@dataclass
class EvalReport:
    dataset: str
    version: str
    baseline: str | None
    run_id: str
    outcomes: list[EvalOutcome]
    means: dict[str, float]
    results: list[Any] = field(default_factory=list)  # AnalysisResult rows (summary and comparison)

    @property
    def errors(self) -> int:
        return sum(1 for o in self.outcomes if o.error)


def resolve_target(spec: str) -> Callable[..., Any]:
    """``package.module:function`` (or ``module:Class.method``) to a callable; ValueError says what is wrong."""
    module_name, sep, attribute = (spec or "").partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"bad --target {spec!r}: use module:function, e.g. myapp.chat:answer")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--target {spec!r}: cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"--target {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"--target {spec!r} is not callable")
    return target


def output_text(value: Any) -> str:
    """The answer text of what the target returned: a string, or a provider response object or dict."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    from llmpulse.agent import response_text

    return response_text(value) or str(value)


def _accepts_context(target: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "context" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def run_items(
    items: Sequence[ReferenceItem], target: Callable[..., Any], *, version: str, run_id: str
) -> list[EvalOutcome]:
    """Call the target on every item (errors are recorded per item, never stop the run)."""
    from llmpulse.agent import attributes, current_ids, observe

    pass_context = _accepts_context(target)

    @observe(name="llmpulse.eval.item", kind="chain")
    def one(item: ReferenceItem) -> tuple[Any, tuple[str, str] | None]:
        ids = current_ids()
        if pass_context and item.context:
            return target(item.input, context=item.context), ids
        return target(item.input), ids

    outcomes = []
    for item in items:
        outcome = EvalOutcome(item=item)
        tags = {
            ITEM_ID_ATTRIBUTE: item.item_id,
            DATASET_ATTRIBUTE: item.dataset,
            RUN_ATTRIBUTE: run_id,
            VERSION_ATTRIBUTE: version,
        }
        started = time.perf_counter()
        try:
            with attributes(attributes=tags):
                value, ids = one(item)
            outcome.output = output_text(value)
            if ids:
                outcome.trace_id, outcome.span_id = ids
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return outcomes


def score_outcomes(outcomes: Sequence[EvalOutcome], encode: Any = None) -> dict[str, Any]:
    """Metric arrays over the outcomes; an item whose call failed scores 0 on every metric."""
    import numpy as np

    from .metrics import score_pairs

    scores = score_pairs([o.output for o in outcomes], [o.item.reference for o in outcomes], encode)
    failed = np.array([bool(o.error) for o in outcomes])
    return {m: np.where(failed, 0.0, v) for m, v in scores.items()}


def run_eval(
    client: Any,
    database: str,
    *,
    dataset: str,
    target: Callable[..., Any],
    version: str,
    baseline: str | None = None,
    metrics: Sequence[str] = ("rougeL", "chrf", "embedding"),
    margin: float = 0.02,
    alpha: float = 0.05,
    encode: Any = None,
    resamples: int = 2000,
    seed: int = 0,
) -> EvalReport:
    """Run, score, store and (with ``baseline``) compare; returns the report with its result rows."""
    import numpy as np
    from llmpulse.analyzers.framework.results import NOT_ENOUGH_DATA, AnalysisResult, alerts_from, result_fields
    from llmpulse.analyzers.framework.statistics import adjust_for_multiple_testing
    from llmpulse.analyzers.framework.windows import Window
    from llmpulse.analyzers.io.references import read_items
    from llmpulse.analyzers.io.scores import ScoreRow, eval_scores, write_scores
    from llmpulse.analyzers.io.store import AnalysisStore

    from .comparison import compare_items, delta_result

    items = read_items(client, database, dataset)
    if not items:
        raise ValueError(f"no reference items in dataset {dataset!r}: load them with `llmpulse references load`")
    no_input = [i.item_id for i in items if not i.input]
    if no_input:
        raise ValueError(f"{len(no_input)} item(s) of {dataset!r} have no input to run (e.g. {no_input[0]!r})")
    run_id = uuid.uuid4().hex
    started = datetime.now(timezone.utc)
    outcomes = run_items(items, target, version=version, run_id=run_id)
    scores = score_outcomes(outcomes, encode)
    ended = datetime.now(timezone.utc)
    primary = metrics[0]
    rows = [
        ScoreRow(
            timestamp=ended,
            scorer="eval",
            scorer_version=VERSION,
            trace_id=o.trace_id,
            span_id=o.span_id,
            score=float(scores[primary][k]),
            flagged=bool(o.error),
            method=f"reference:{primary}",
            dataset=o.item.dataset,
            item_id=o.item.item_id,
            version=version,
            signals={m: float(v[k]) for m, v in scores.items() if v[k] == v[k]},
            details={"run_id": run_id, "error": o.error, "seconds": round(o.seconds, 4)},
        )
        for k, o in enumerate(outcomes)
    ]
    previous = eval_scores(client, database, dataset, baseline) if baseline else {}
    write_scores(client, database, rows)

    window = Window(started, max(ended, started + timedelta(milliseconds=1)))
    fields = dict(
        analyzer=NAME, version=VERSION, window=window, reference=None, segment={"dataset": dataset, "version": version}
    )
    means = {m: float(np.nanmean(scores[m])) if np.isfinite(scores[m]).any() else float("nan") for m in metrics}
    results = [
        AnalysisResult(
            **result_fields(**fields),
            metric=f"{m}_mean",
            value=means[m],
            details={"n": len(outcomes), "errors": sum(1 for o in outcomes if o.error), "run_id": run_id},
        )
        for m in metrics
    ]
    if baseline:
        mine = {o.item.item_id: {m: float(scores[m][k]) for m in metrics} for k, o in enumerate(outcomes)}
        comparisons = compare_items(previous, mine, metrics, margin=margin, n_resamples=resamples, seed=seed)
        compared = []
        for metric, comparison in comparisons.items():
            if comparison is None:
                results.append(
                    AnalysisResult(
                        **result_fields(**fields),
                        metric=f"{metric}_delta",
                        status=NOT_ENOUGH_DATA,
                        summary=f"baseline {baseline!r} has no scores on these items for {metric}",
                    )
                )
                continue
            summary = (
                f"{version} vs {baseline} on {dataset}: {metric} {comparison.candidate_mean:.3f} vs "
                f"{comparison.baseline_mean:.3f}, {comparison.change_text()}"
            )
            compared.append(delta_result(fields, comparison, alpha, summary, baseline=baseline, run_id=run_id))
        adjust_for_multiple_testing(compared, alpha, also=lambda r: bool(r.details.get("regression")))
        results.extend(compared)
    store = AnalysisStore(client, database)
    store.write_results(results, run_id=run_id)
    store.write_alerts(alerts_from(results), run_id=run_id)
    return EvalReport(dataset, version, baseline, run_id, outcomes, means, results)
