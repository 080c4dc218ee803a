"""Context-free hallucination signals: agreement between samples, and token log-probabilities. Pure.

Without a context to check against, two cheap signals remain:

* **self-consistency** (SelfCheckGPT): when the provider returned several samples for one request
  (``n > 1``), a fact the model is sure of recurs across samples while an invented one does not. We
  measure, for the main answer, the share of its content tokens absent from each other sample (the
  lexical variant, like SelfCheck's unigram) and the per-sentence best embedding similarity to each
  other sample (a BERTScore-like variant), averaged over samples.
* **token log-probabilities**: the mean and the worst token surprise (-log p) of the answer, and the
  share of tokens the model gave less than 10 % probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from llmpulse.analyzers.text import Encode

from .grounding import sentence_support, unsupported_token_share

LOW_CONFIDENCE_LOGPROB = math.log(0.1)


@dataclass(frozen=True)
class SampleSignals:
    """Disagreement of the main answer with the other samples; NaN where not computable."""

    sample_unsupported_token_share: float
    sample_min_sentence_similarity: float = math.nan
    samples: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class LogprobSignals:
    """Token surprise statistics of one answer (natural-log probabilities as the providers return them)."""

    mean_neg_logprob: float
    max_neg_logprob: float
    low_confidence_share: float
    tokens: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def sample_signals(main: str, others: Sequence[str], encode: Encode | None = None) -> SampleSignals | None:
    """Self-consistency of ``main`` against the other samples; None with no other non-empty sample."""
    others = [o for o in others if o and o.strip()]
    if not main or not main.strip() or not others:
        return None
    lexical = float(np.mean([unsupported_token_share(main, other) for other in others]))
    similarity = math.nan
    if encode is not None:
        lows = [sentence_support(main, other, encode)[0] for other in others]
        finite = [x for x in lows if math.isfinite(x)]
        similarity = float(np.mean(finite)) if finite else math.nan
    return SampleSignals(lexical, similarity, len(others))


def logprob_signals(logprobs: Sequence[float]) -> LogprobSignals | None:
    """Surprise statistics of the answer's token log-probabilities; None when there are none."""
    values = np.asarray([x for x in logprobs if x is not None and math.isfinite(x)], dtype=np.float64)
    if values.size == 0:
        return None
    surprise = -np.minimum(values, 0.0)
    return LogprobSignals(
        mean_neg_logprob=float(surprise.mean()),
        max_neg_logprob=float(surprise.max()),
        low_confidence_share=float(np.mean(values < LOW_CONFIDENCE_LOGPROB)),
        tokens=int(values.size),
    )
