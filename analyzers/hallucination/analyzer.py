"""``llmpulse analyze hallucination``: score each captured call, compare the scores per segment.

Reads the calls of the window and of the reference window whose response was captured, scores each
(:mod:`.signals` and the stored model in ``hallucination_model.json``), writes one ``call_scores`` row
per call (scorer "hallucination"), and returns one result per segment: the share of flagged calls,
with the alarm from the score distributions (``score_alarms.shift_results``: one-sided Mann-Whitney U
of current against reference scores, BH across segments, and a practical margin on the share of
calls above the reference window's 90th percentile, so no threshold tuned on one domain decides).
Calls already scored by the same analyzer and model version are not scored again, so a long
reference window costs its scoring once.

Options: alpha (0.05), margin (0.05: minimum rise of the share above the reference's 90th percentile), min_samples (30 scored calls
per window), segment_by (service, model), max_calls (2,000 per segment and window), embeddings (on:
the sentence-similarity signals), model_path (another fitted model file), nli_model (a local
cross-encoder directory, off), judge_url / judge_model (an OpenAI-compatible LLM judge, off).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse.analyzers.framework.options import resolve_options
from llmpulse.analyzers.framework.progress import progress
from llmpulse.analyzers.framework.results import AnalysisResult
from llmpulse.analyzers.framework.score_window import CallScorer, Verdict, score_window
from llmpulse.analyzers.framework.windows import Window
from llmpulse.analyzers.io.scores import CALL_COLUMNS

NAME = "hallucination"
VERSION = "2"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "margin": 0.05,
    "min_samples": 30,
    "segment_by": ["service", "model"],
    "max_calls": 2000,
    "embeddings": True,
    "model_path": "",
    "nli_model": "",
    "judge_url": "",
    "judge_model": "",
    "seed": 0,
}
COLUMNS = [*CALL_COLUMNS, "ResponseText", "Context", "InputMessages", "OutputMessages"]
LOGPROBS_ATTRIBUTE = "llmpulse.output.token_logprobs"


def analyze(store: Any, window: Window, reference: Window, options: Mapping[str, Any]) -> list[AnalysisResult]:
    from llmpulse.analyzers.embeddings import optional_encoder
    from llmpulse.analyzers.framework.score_alarms import shift_results

    from .model import HallucinationModel

    opts = resolve_options(DEFAULTS, options)
    model = HallucinationModel.load(opts["model_path"] or None)
    scorer_version = f"{VERSION}+{hashlib.sha1(model.to_json().encode()).hexdigest()[:8]}"
    scorer = call_scorer(opts, model, optional_encoder(store, opts["embeddings"]), scorer_version, _judges(opts))
    current = score_window(store, window, scorer)
    past = score_window(store, reference, scorer)

    def extra(cur: Any, ref: Any) -> dict[str, Any]:
        return {
            "methods": {str(k): int(v) for k, v in cur["Method"].value_counts().items()},
            "calibrated_share": float(cur["Calibrated"].mean()),
            "scorer_version": scorer_version,
        }

    return shift_results(
        analyzer=NAME,
        version=VERSION,
        metric="hallucination_rate",
        window=window,
        reference=reference,
        current=current,
        past=past,
        options=opts,
        extra=extra,
        empty_reason="no call in either window has a RAG context, several choices or token log-probabilities",
    )


def _judges(opts: Mapping[str, Any]) -> list[Any]:
    """The optional second opinions asked for (each adds a signal; neither changes the calibrated score)."""
    from .judges import LlmJudge, NliJudge

    judges: list[Any] = []
    if opts["nli_model"]:
        judges.append(NliJudge(opts["nli_model"]))
    if opts["judge_url"]:
        judges.append(LlmJudge(base_url=opts["judge_url"], model=opts["judge_model"]))
    return judges


def call_scorer(
    opts: Mapping[str, Any], model: Any, encode: Any, scorer_version: str, judges: Sequence[Any] = ()
) -> CallScorer:
    """The hallucination scorer for :func:`score_window`: Score, Flagged, Method and Calibrated columns."""
    calibrated = {name: head.calibrated for name, head in model.heads.items()}

    def score(records: list[dict[str, Any]], attributes: list[dict[str, str]]) -> list[Verdict | None]:
        from .signals import call_content, score_contents

        contents = [
            call_content(record, attrs.get(LOGPROBS_ATTRIBUTE))
            for record, attrs in zip(progress(records, desc=f"{NAME} signals"), attributes, strict=True)
        ]
        return [
            None
            if verdict is None
            else Verdict(
                values={
                    "Score": verdict.score,
                    "Flagged": verdict.flagged,
                    "Method": verdict.method,
                    "Calibrated": verdict.calibrated,
                },
                score=verdict.score,
                flagged=verdict.flagged,
                method=verdict.method,
                threshold=verdict.threshold,
                signals=verdict.signals,
                details={"calibrated": verdict.calibrated, "context_chars": len(content.context)},
            )
            for content, verdict in zip(contents, score_contents(contents, model, encode, judges), strict=True)
        ]

    def cached(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Score": row["score"],
            "Flagged": row["flagged"],
            "Method": row["method"],
            "Calibrated": calibrated.get(row["method"], False),
        }

    return CallScorer(
        name=NAME,
        version=scorer_version,
        read={
            "columns": COLUMNS,
            "segment_by": opts["segment_by"],
            "require_text": ("ResponseText",),
            "require_any": ("context", "choices", "logprobs"),  # scorable calls only, tested in SQL
            "limit_per_segment": opts["max_calls"],
            "seed": opts["seed"],
        },
        columns={"Score": "float64", "Flagged": "bool", "Method": "object", "Calibrated": "bool"},
        score=score,
        cached=cached,
        attributes=(LOGPROBS_ATTRIBUTE,),
    )
