"""``llmpulse analyze injection``: score prompts for injection attempts, compare flagged rates per segment.

Each captured call's prompt (and its RAG context, the path of indirect injection) is scored with
:mod:`.signals` (attack patterns + similarity to known attacks); the larger of the two scores is the
call's. One ``call_scores`` row per call (scorer "injection") carries the matched patterns; the result
per segment is the flagged share, tested against the reference window (``score_alarms.rate_results``:
Fisher exact test, BH across segments, practical margin).

Options: alpha (0.05), margin (0.01), min_samples (30), segment_by (service, model), max_calls
(2,000 per segment and window), embeddings (on), threshold (0.5), bank_path (another attack bank).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.options import resolve_options
from llmpulse.analyzers.framework.results import AnalysisResult
from llmpulse.analyzers.framework.score_window import CallScorer, Verdict, score_window
from llmpulse.analyzers.framework.windows import Window
from llmpulse.analyzers.io.scores import CALL_COLUMNS

NAME = "injection"
VERSION = "1"
DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "margin": 0.01,
    "min_samples": 30,
    "segment_by": ["service", "model"],
    "max_calls": 2000,
    "embeddings": True,
    "threshold": 0.5,
    "bank_path": "",
    "seed": 0,
}
COLUMNS = [*CALL_COLUMNS, "PromptText", "Context"]


def analyze(store: Any, window: Window, reference: Window, options: Mapping[str, Any]) -> list[AnalysisResult]:
    from llmpulse.analyzers.embeddings import optional_encoder
    from llmpulse.analyzers.framework.score_alarms import rate_results

    from .signals import AttackBank

    opts = resolve_options(DEFAULTS, options)
    if not 0 < opts["threshold"] < 1:
        raise AnalyzerInputError(f"threshold must be between 0 and 1, got {opts['threshold']}")
    bank = AttackBank.load(opts["bank_path"] or None)
    encode = optional_encoder(store, opts["embeddings"])
    fingerprint = hashlib.sha1(repr((bank, opts["threshold"], opts["embeddings"])).encode()).hexdigest()[:8]
    scorer_version = f"{VERSION}+{fingerprint}"
    scorer = call_scorer(opts, bank, encode, scorer_version)
    current = score_window(store, window, scorer)
    past = score_window(store, reference, scorer)

    return rate_results(
        analyzer=NAME,
        version=VERSION,
        metric="injection_rate",
        window=window,
        reference=reference,
        current=current,
        past=past,
        options=opts,
        extra=lambda cur, ref: {"scorer_version": scorer_version},
    )


def score_texts(prompts: list[str], contexts: list[str], bank: Any, encode: Any, threshold: float) -> list[Any]:
    """Per call, the stronger verdict of its prompt and its context, with where it was found."""
    from .signals import score_prompts

    by_prompt = score_prompts(prompts, bank, encode, threshold=threshold)
    with_context = [i for i, c in enumerate(contexts) if c.strip()]
    by_context = dict(
        zip(
            with_context,
            score_prompts([contexts[i] for i in with_context], bank, encode, threshold=threshold),
            strict=True,
        )
    )
    out = []
    for index, verdict in enumerate(by_prompt):
        other = by_context.get(index)
        out.append((other, "context") if other is not None and other.score > verdict.score else (verdict, "prompt"))
    return out


def call_scorer(opts: Mapping[str, Any], bank: Any, encode: Any, scorer_version: str) -> CallScorer:
    """The injection scorer for :func:`score_window`: every call with a prompt, Score and Flagged columns."""
    threshold = float(opts["threshold"])

    def score(records: list[dict[str, Any]], attributes: list[dict[str, str]]) -> list[Verdict]:
        prompts = [str(r["PromptText"]) for r in records]
        contexts = [str(r["Context"] or "") for r in records]
        verdicts = []
        for verdict, where in score_texts(prompts, contexts, bank, encode, threshold):
            nearest = bank.attacks[verdict.nearest_attack] if verdict.nearest_attack is not None else None
            verdicts.append(
                Verdict(
                    values={"Score": float(verdict.score), "Flagged": bool(verdict.flagged)},
                    score=verdict.score,
                    flagged=verdict.flagged,
                    method="patterns+similarity" if encode is not None else "patterns",
                    threshold=threshold,
                    signals={k: v for k, v in verdict.signals().items() if v == v},
                    details={
                        "found_in": where,
                        "patterns": list(verdict.matched),
                        "categories": list(verdict.categories),
                        "nearest_attack": nearest["text"][:200] if nearest else None,
                        "nearest_attack_source": nearest["source"] if nearest else None,
                    },
                )
            )
        return verdicts

    return CallScorer(
        name=NAME,
        version=scorer_version,
        read={
            "columns": COLUMNS,
            "segment_by": opts["segment_by"],
            "require_text": ("PromptText",),
            "limit_per_segment": opts["max_calls"],
            "seed": opts["seed"],
        },
        columns={"Score": "float64", "Flagged": "bool"},
        score=score,
        cached=lambda row: {"Score": float(row["score"]), "Flagged": bool(row["flagged"])},
    )
