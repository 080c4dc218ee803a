"""``llmpulse analyze hallucination``: score each captured call, compare flagged rates per segment.

Reads the calls of the window and of the reference window whose response was captured, scores each
(analyzers/hallucination_signals + the stored model in hallucination_model.json), writes one
``call_scores`` row per call (scorer "hallucination"), and returns one result per segment: the share
of flagged calls, with the alarm from the score distributions (score_shift.shift_results: one-sided
Mann-Whitney U of current against reference scores, BH across segments, and a practical margin on the
share of calls above the reference window's 90th percentile, so no threshold tuned on one domain
decides). Calls already scored by the same analyzer and model version are not scored again, so a
long reference window costs its scoring once.

Public API for apps that want a guardrail: :func:`score` and :func:`score_many` (the bundled model and
the embedding model loaded once per process).

Options: alpha (0.05), margin (0.05: minimum rise of the share above the reference's 90th percentile), min_samples (30 scored calls
per window), segment_by (service, model), max_calls (2,000 per segment and window), embeddings (on:
the sentence-similarity signals), model_path (another fitted model file), nli_model (a local
cross-encoder directory, off), judge_url / judge_model (an OpenAI-compatible LLM judge, off).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .base import AnalysisResult, Window, progress, resolve_options

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
COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ServiceName",
    "RequestModel",
    "ModelVersion",
    "PromptVersion",
    "ResponseText",
    "Context",
    "InputMessages",
    "OutputMessages",
]
LOGPROBS_ATTRIBUTE = "llmpulse.output.token_logprobs"
_defaults_lock = threading.Lock()
_defaults: dict[str, Any] = {}


def _default_scorer() -> tuple[Any, Any]:
    """The bundled model and an embedder, made once per process (the embedding model loads once too)."""
    with _defaults_lock:
        if not _defaults:
            from .embeddings import Embedder
            from .hallucination_model import HallucinationModel

            _defaults["model"] = HallucinationModel.load()
            _defaults["encode"] = Embedder().encode
        return _defaults["model"], _defaults["encode"]


def score_many(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Hallucination scores in [0, 1] (higher = more likely unsupported) of (context, response) pairs, batched.

    Every pair is scored by its grounding signals (a response that claims nothing scores low, an empty
    context supports nothing); the embedding signals of all pairs are computed in two batched calls.
    """
    from .grounding import grounding_signals_many
    from .hallucination_signals import score_signals

    model, encode = _default_scorer()
    found = grounding_signals_many([(str(r or ""), str(c or "")) for c, r in pairs], encode)
    verdicts = [score_signals(g.as_dict(), model) for g in found]
    return [float(v.score) if v is not None else 0.0 for v in verdicts]


def score(context: str, response: str) -> float:
    """The hallucination score of one response against its context: :func:`score_many` of one pair."""
    return score_many([(context, response)])[0]


def analyze(store: Any, window: Window, reference: Window, options: Mapping[str, Any]) -> list[AnalysisResult]:
    from .embeddings import optional_encoder
    from .hallucination_model import HallucinationModel
    from .score_shift import shift_results

    opts = resolve_options(DEFAULTS, options)
    model = HallucinationModel.load(opts["model_path"] or None)
    scorer_version = f"{VERSION}+{hashlib.sha1(model.to_json().encode()).hexdigest()[:8]}"
    encode = optional_encoder(store, opts["embeddings"])
    judges = _judges(opts)
    current = score_window(store, window, opts, model, encode, scorer_version, judges)
    past = score_window(store, reference, opts, model, encode, scorer_version, judges)

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


def score_window(
    store: Any,
    window: Window,
    opts: Mapping[str, Any],
    model: Any,
    encode: Any,
    scorer_version: str,
    judges: list[Any] = (),  # type: ignore[assignment]
) -> Any:
    """The scorable calls of a window with Score, Flagged, Method and Calibrated columns; new scores stored."""
    import pandas as pd

    from .call_scores import ScoreRow, call_fields, read_scores, span_attributes, write_scores
    from .hallucination_signals import call_content, score_contents

    frame = store.read_calls(
        window,
        COLUMNS,
        segment_by=opts["segment_by"],
        require_text=("ResponseText",),
        require_any=("context", "choices", "logprobs"),  # scorable calls only, tested in SQL
        limit_per_segment=opts["max_calls"],
        seed=opts["seed"],
    )
    known = read_scores(store.client, store.database, NAME, window, version=scorer_version)
    todo = frame[~frame["SpanId"].isin(list(known))] if len(frame) else frame
    new_rows: list[ScoreRow] = []
    fresh: dict[str, dict[str, Any]] = {}
    if len(todo):
        attributes = span_attributes(store.client, store.database, window, [LOGPROBS_ATTRIBUTE])
        records = todo.to_dict("records")
        contents = [
            call_content(r, attributes.get(str(r["SpanId"]), {}).get(LOGPROBS_ATTRIBUTE))
            for r in progress(records, desc=f"{NAME} signals")
        ]
        verdicts = score_contents(contents, model, encode, judges)
        for record, content, verdict in zip(records, contents, verdicts, strict=True):
            if verdict is None:
                continue
            fresh[str(record["SpanId"])] = {
                "score": verdict.score,
                "flagged": verdict.flagged,
                "method": verdict.method,
                "calibrated": verdict.calibrated,
            }
            new_rows.append(
                ScoreRow(
                    **call_fields(record),
                    scorer=NAME,
                    scorer_version=scorer_version,
                    score=verdict.score,
                    flagged=verdict.flagged,
                    method=verdict.method,
                    threshold=verdict.threshold,
                    signals=verdict.signals,
                    details={"calibrated": verdict.calibrated, "context_chars": len(content.context)},
                )
            )
        write_scores(store.client, store.database, new_rows)
    calibrated = {name: head.calibrated for name, head in model.heads.items()}
    lookup = {
        **{k: {**v, "calibrated": calibrated.get(v["method"], False)} for k, v in known.items()},
        **fresh,
    }
    if not len(frame):
        return frame.assign(Score=[], Flagged=[], Method=[], Calibrated=[])
    scored = frame[frame["SpanId"].isin(list(lookup))].copy()
    values = [lookup[str(s)] for s in scored["SpanId"]]
    scored["Score"] = pd.Series([v["score"] for v in values], index=scored.index, dtype="float64")
    scored["Flagged"] = pd.Series([bool(v["flagged"]) for v in values], index=scored.index, dtype="bool")
    scored["Method"] = [v["method"] for v in values]
    scored["Calibrated"] = pd.Series([bool(v["calibrated"]) for v in values], index=scored.index, dtype="bool")
    return scored
