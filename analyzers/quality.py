"""Quality against reference answers: per-item scores and a paired comparison of two versions. Pure.

Scores per (output, reference) pair: ROUGE-1/2/L F-measure (rouge-score, Porter stemming, with a
Unicode tokenizer so non-Latin text is not scored 0), sentence BLEU and chrF (sacrebleu, rescaled to
[0, 1]), cosine similarity of sentence embeddings, and exact match after SQuAD-style normalisation.

Two versions answering the same items are compared on the per-item differences (candidate minus
baseline): a paired bootstrap confidence interval of the mean difference (scipy.stats.bootstrap, BCa)
and a Wilcoxon signed-rank test (scipy.stats.wilcoxon). A regression is declared only when the
interval lies entirely below zero AND the mean drop exceeds a practical margin, so a tiny but
"significant" change on a large set does not page anyone (shared/reference/analyzers.md §9.3).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .grounding import Encode

METRICS: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "embedding", "exact_match")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORDS = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+", re.UNICODE)  # CJK: one token per character (no spaces)


class UnicodeTokenizer:
    """rouge-score's tokenizer for any script: lowercase word runs (CJK characters one by one), Porter
    stemming of ASCII words longer than 3 characters.

    For ASCII text it gives the same tokens as rouge-score's default; the default drops every
    non-[a-z0-9] character, so Chinese or accented text would score 0 (reference/analyzers.md §6).
    """

    def tokenize(self, text: str) -> list[str]:
        from .grounding import _stemmer

        stemmer = _stemmer()
        words = _WORDS.findall(unicodedata.normalize("NFKC", text or "").lower())
        return [stemmer.stem(w) if len(w) > 3 and w.isascii() else w for w in words]


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=UnicodeTokenizer())


def normalise_answer(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def score_pair(output: str, reference: str) -> dict[str, float]:
    """The lexical metrics of one pair (all but ``embedding``), each in [0, 1]."""
    import sacrebleu

    rouge = _rouge().score(reference or "", output or "")
    # sacrebleu's default 13a tokenizer splits on spaces; CJK text has none, so score it by character
    tokenize = "char" if re.search(f"[{_CJK}]", (output or "") + (reference or "")) else "13a"
    return {
        "rouge1": float(rouge["rouge1"].fmeasure),
        "rouge2": float(rouge["rouge2"].fmeasure),
        "rougeL": float(rouge["rougeL"].fmeasure),
        "bleu": min(
            float(sacrebleu.sentence_bleu(output or "", [reference or ""], tokenize=tokenize).score) / 100.0, 1.0
        ),
        "chrf": min(float(sacrebleu.sentence_chrf(output or "", [reference or ""]).score) / 100.0, 1.0),
        "exact_match": float(normalise_answer(output) == normalise_answer(reference)),
    }


def score_pairs(
    outputs: Sequence[str], references: Sequence[str], encode: Encode | None = None
) -> dict[str, np.ndarray]:
    """Every metric for each pair, as arrays in input order; ``embedding`` is NaN without ``encode``."""
    if len(outputs) != len(references):
        raise ValueError(f"{len(outputs)} outputs but {len(references)} references")
    rows = [score_pair(o, r) for o, r in zip(outputs, references, strict=True)]
    scores = {m: np.array([row[m] for row in rows], dtype=np.float64) for m in METRICS if m != "embedding"}
    scores["embedding"] = np.full(len(rows), np.nan)
    if encode is not None and rows:
        a = np.asarray(encode([o or "" for o in outputs]), dtype=np.float64)
        b = np.asarray(encode([r or "" for r in references]), dtype=np.float64)
        scores["embedding"] = np.clip(np.sum(a * b, axis=1), -1.0, 1.0)
    return {m: scores[m] for m in METRICS}


@dataclass(frozen=True)
class PairedComparison:
    """Candidate versus baseline on the same items, for one metric."""

    metric: str
    n: int
    baseline_mean: float
    candidate_mean: float
    mean_delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    margin: float
    regression: bool
    improvement: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bootstrap_mean_ci(deltas: np.ndarray, confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if np.ptp(deltas) <= 1e-12:  # every item moved by the same amount: no sampling variability to resample
        return float(deltas.mean()), float(deltas.mean())
    for method in ("BCa", "percentile"):  # BCa can be undefined on heavily tied data; fall back
        interval = bootstrap(
            (deltas,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method, rng=seed
        ).confidence_interval
        if math.isfinite(interval.low) and math.isfinite(interval.high):
            return float(interval.low), float(interval.high)
    return math.nan, math.nan


def _wilcoxon_p(deltas: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if not np.any(deltas != 0):
        return 1.0  # no item changed: nothing to test
    return float(wilcoxon(deltas, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_paired(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    metric: str = "score",
    margin: float = 0.02,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap CI of the mean difference and a Wilcoxon signed-rank p-value.

    ``regression``: the whole interval is below zero and the mean drop is larger than ``margin``;
    ``improvement`` mirrors it. Pairs where either side is NaN are dropped.
    """
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape:
        raise ValueError(f"baseline has {b.size} items but candidate has {c.size}: they must be paired")
    keep = np.isfinite(b) & np.isfinite(c)
    b, c = b[keep], c[keep]
    if b.size < 2:
        raise ValueError(f"need at least 2 paired items to compare, got {b.size}")
    deltas = c - b
    low, high = _bootstrap_mean_ci(deltas, confidence, n_resamples, seed)
    mean = float(deltas.mean())
    return PairedComparison(
        metric=metric,
        n=int(b.size),
        baseline_mean=float(b.mean()),
        candidate_mean=float(c.mean()),
        mean_delta=mean,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=_wilcoxon_p(deltas),
        margin=margin,
        regression=bool(high < 0 and mean < -margin),
        improvement=bool(low > 0 and mean > margin),
    )


def item_means(item_ids: Sequence[str], scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean score per item and metric (several calls answering one item count once, as their mean)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for index, item in enumerate(item_ids):
        per_metric = sums.setdefault(item, {})
        for metric, values in scores.items():
            value = float(values[index])
            if math.isfinite(value):
                per_metric.setdefault(metric, []).append(value)
    return {item: {m: float(np.mean(v)) for m, v in metrics.items()} for item, metrics in sums.items()}


def compare_items(
    baseline: dict[str, dict[str, float]],
    candidate: dict[str, dict[str, float]],
    metrics: Sequence[str],
    **options: Any,
) -> dict[str, PairedComparison | None]:
    """:func:`compare_paired` per metric on the items both sides answered; None where under 2 pairs."""
    out: dict[str, PairedComparison | None] = {}
    for metric in metrics:
        shared = sorted(
            i for i in baseline.keys() & candidate.keys() if metric in baseline[i] and metric in candidate[i]
        )
        if len(shared) < 2:
            out[metric] = None
            continue
        out[metric] = compare_paired(
            [baseline[i][metric] for i in shared], [candidate[i][metric] for i in shared], metric=metric, **options
        )
    return out


def parse_metrics(value: str | Sequence[str]) -> list[str]:
    """``"rougeL,chrf"`` or a list, checked against METRICS."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))
