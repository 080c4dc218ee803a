"""Quality against reference answers: the per-item scores of an output against its reference. Pure.

Scores per (output, reference) pair: ROUGE-1/2/L F-measure (rouge-score, Porter stemming, with a
Unicode tokenizer so non-Latin text is not scored 0), sentence BLEU and chrF (sacrebleu, rescaled to
[0, 1]), cosine similarity of sentence embeddings, and exact match after SQuAD-style normalisation.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from llmpulse.analyzers.text import Encode, porter_stemmer

METRICS: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "embedding", "exact_match")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORDS = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+", re.UNICODE)  # CJK: one token per character (no spaces)


class UnicodeTokenizer:
    """rouge-score's tokenizer for any script: lowercase word runs (CJK characters one by one), Porter
    stemming of ASCII words longer than 3 characters.

    For ASCII text it gives the same tokens as rouge-score's default; the default drops every
    non-[a-z0-9] character, so Chinese text scores 0 even against itself and accented letters are lost.
    """

    def tokenize(self, text: str) -> list[str]:
        stemmer = porter_stemmer()
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


def parse_metrics(value: str | Sequence[str]) -> list[str]:
    """``"rougeL,chrf"`` or a list, checked against METRICS."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))
