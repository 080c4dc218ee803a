"""``llmpulse analyze injection``: score prompts for injection attempts, compare flagged rates per segment.

Each captured call's prompt (and its RAG context, the path of indirect injection) is scored with
analyzers/injection_signals (attack patterns + similarity to known attacks); the larger of the two
scores is the call's. One ``call_scores`` row per call (scorer "injection") carries the matched
patterns; the result per segment is the flagged share, tested against the reference window
(rates.rate_results: Fisher exact test, BH across segments, practical margin).

Options: alpha (0.05), margin (0.01), min_samples (30), segment_by (service, model), max_calls
(2,000 per segment and window), embeddings (on), threshold (0.5), bank_path (another attack bank).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import AnalysisResult, Window, resolve_options

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
COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ServiceName",
    "RequestModel",
    "ModelVersion",
    "PromptVersion",
    "PromptText",
    "Context",
]


def analyze(store: Any, window: Window, reference: Window, options: Mapping[str, Any]) -> list[AnalysisResult]:
    import hashlib

    from .embeddings import optional_encoder
    from .injection_signals import AttackBank
    from .rates import rate_results

    opts = resolve_options(DEFAULTS, options)
    if not 0 < opts["threshold"] < 1:
        from .base import AnalyzerInputError

        raise AnalyzerInputError(f"threshold must be between 0 and 1, got {opts['threshold']}")
    bank = AttackBank.load(opts["bank_path"] or None)
    encode = optional_encoder(store, opts["embeddings"])
    fingerprint = hashlib.sha1(repr((bank, opts["threshold"], opts["embeddings"])).encode()).hexdigest()[:8]
    scorer_version = f"{VERSION}+{fingerprint}"
    current = score_window(store, window, opts, bank, encode, scorer_version)
    past = score_window(store, reference, opts, bank, encode, scorer_version)

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
    from .injection_signals import score_prompts

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


def score_window(
    store: Any, window: Window, opts: Mapping[str, Any], bank: Any, encode: Any, scorer_version: str
) -> Any:
    """The window's calls with a prompt, with Score and Flagged columns; new scores stored."""
    from .call_scores import ScoreRow, call_fields, read_scores, write_scores

    frame = store.read_calls(
        window,
        COLUMNS,
        segment_by=opts["segment_by"],
        require_text=("PromptText",),
        limit_per_segment=opts["max_calls"],
        seed=opts["seed"],
    )
    if not len(frame):
        return frame.assign(Score=[], Flagged=[])
    known = read_scores(store.client, store.database, NAME, window, version=scorer_version)
    todo = frame[~frame["SpanId"].isin(list(known))]
    lookup = {k: (v["score"], v["flagged"]) for k, v in known.items()}
    if len(todo):
        records = todo.to_dict("records")
        verdicts = score_texts(
            [str(r["PromptText"]) for r in records],
            [str(r["Context"] or "") for r in records],
            bank,
            encode,
            float(opts["threshold"]),
        )
        rows = []
        for record, (verdict, where) in zip(records, verdicts, strict=True):
            lookup[str(record["SpanId"])] = (verdict.score, verdict.flagged)
            nearest = bank.attacks[verdict.nearest_attack] if verdict.nearest_attack is not None else None
            rows.append(
                ScoreRow(
                    **call_fields(record),
                    scorer=NAME,
                    scorer_version=scorer_version,
                    score=verdict.score,
                    flagged=verdict.flagged,
                    method="patterns+similarity" if encode is not None else "patterns",
                    threshold=float(opts["threshold"]),
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
        write_scores(store.client, store.database, rows)
    scored = frame.copy()
    scored["Score"] = [float(lookup[str(s)][0]) for s in scored["SpanId"]]
    scored["Flagged"] = [bool(lookup[str(s)][1]) for s in scored["SpanId"]]
    return scored
