"""Grounding signals: how much of a response its (RAG) context supports. Pure functions, no I/O.

Every signal is a share or a similarity, never a count, so that none of them is a disguised length
measure (see ``hallucination_model`` for why raw length must stay out of the score). Tokens come from
rouge-score's tokenizer (lowercase, ``[a-z0-9]`` runs, Porter stemming), so the overlap signals and the
ROUGE precisions see the same words; stop words are scikit-learn's English list.

Named entities are found with a light capitalisation heuristic (runs of capitalised words and
acronyms; a capitalised word opening a sentence counts unless it is also written in lower case in
the response or context), not a trained tagger: good enough to notice a name
or a place the context never mentions, blind to lower-case entities and to non-Latin scripts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

Encode = Callable[[Sequence[str]], np.ndarray]
"""Texts to L2-normalised embedding rows (one per text), e.g. ``Embedder.encode``."""

# A sentence ends at . ! ? (or a newline) followed by space or directly by a capital letter: context
# passages glued together without a space ("...the 19th century.First for Women is...") still split.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s+|(?=[A-Z\"“]))|\n+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?%?")
_CAPITALISED = re.compile(r"[A-Z][\w'\u2019&.-]*|[0-9]+[A-Z][\w]*")
_WORD = re.compile(r"[\w'\u2019&.-]+")
_LOWER_WORD = re.compile(r"\b[a-z][a-z'\u2019-]*")
_CONNECTORS = frozenset({"of", "the", "de", "la", "von", "van", "for", "and", "&"})


@dataclass(frozen=True)
class GroundingSignals:
    """Context signals of one response; each in [0, 1]; NaN where a signal could not be computed."""

    unsupported_token_share: float
    rouge1_precision: float
    rouge2_precision: float
    rougeL_precision: float
    unsupported_number_share: float
    unsupported_entity_share: float
    min_sentence_similarity: float = math.nan
    mean_sentence_similarity: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` by a punctuation heuristic (no model data needed, unlike nltk's punkt)."""
    parts = (p.strip() for p in _SENTENCE_END.split(text or ""))
    return [p for p in parts if p and any(ch.isalnum() for ch in p)]


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem import porter

    return porter.PorterStemmer()


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokens(text: str) -> list[str]:
    """rouge-score's tokens of ``text``: lowercase alphanumeric runs, Porter-stemmed past 3 characters."""
    from rouge_score import tokenize

    return tokenize.tokenize(text or "", _stemmer())


def content_tokens(text: str) -> list[str]:
    """Tokens that carry meaning: stop words dropped (checked before stemming, as the list is unstemmed)."""
    from rouge_score import tokenize

    stop = _stop_words()
    raw = tokenize.tokenize(text or "", None)
    stemmer = _stemmer()
    return [stemmer.stem(t) if len(t) > 3 else t for t in raw if t not in stop]


def unsupported_token_share(response: str, context: str) -> float:
    """Share of the response's content tokens that never occur in the context (0 when it has none)."""
    words = content_tokens(response)
    if not words:
        return 0.0
    known = set(tokens(context))
    return sum(1 for w in words if w not in known) / len(words)


_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=True)


def rouge_precisions(response: str, context: str) -> dict[str, float]:
    """ROUGE-1/2/L precision of the response against the context: the share of its n-grams found there."""
    scores = _rouge().score(context or "", response or "")
    return {name: float(scores[name].precision) for name in _ROUGE_TYPES}


def numbers(text: str) -> set[str]:
    """Numbers written with digits, normalised (thousands separators and trailing zeros dropped)."""
    found = set()
    for match in _NUMBER.findall(text or ""):
        value = match.replace(",", "").rstrip("%").lstrip("+")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        found.add(value)
    return found


def unsupported_number_share(response: str, context: str) -> float:
    """Share of the response's numbers absent from the context (0 when the response has none)."""
    said = numbers(response)
    if not said:
        return 0.0
    return len(said - numbers(context)) / len(said)


def entities(text: str, common: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Capitalised-word runs that look like names (heuristic; see the module docstring).

    A single capitalised word opening a sentence is a name only if it is not in ``common`` (words
    seen written in lower case nearby), so "Designed by..." is not a name but "Scottish." is.
    """
    stop = _stop_words()
    found: list[str] = []
    for sentence in split_sentences(text):
        words = _WORD.findall(sentence)
        run: list[str] = []
        run_starts_sentence = False
        for index, word in enumerate(words):
            capitalised = bool(_CAPITALISED.fullmatch(word))
            if capitalised and index == 0 and word.lower() in stop:
                capitalised = False  # "The", "It", "When" open sentences; they are not names
            if capitalised or (run and word.lower() in _CONNECTORS):
                run_starts_sentence = run_starts_sentence if run else index == 0
                run.append(word)
                continue
            _close_run(run, found, run_starts_sentence, common)
            run = []
        _close_run(run, found, run_starts_sentence, common)
    return found


def _close_run(run: list[str], found: list[str], starts_sentence: bool, common: frozenset[str] | set[str]) -> None:
    while run and run[-1].lower() in _CONNECTORS:
        run.pop()
    if len(run) == 1 and starts_sentence and run[0].lower() in common:
        return  # an ordinary word that happens to open a sentence ("Designed by...")
    if run:
        found.append(" ".join(w.strip(".'\u2019") for w in run))


def unsupported_entity_share(response: str, context: str) -> float:
    """Share of the response's entities the context does not mention (0 when the response has none).

    An entity counts as mentioned when its text occurs in the context, or when all its tokens do (so
    "Nixon" is supported by "President Richard Nixon" and "Magazine, Arthur's" by "Arthur's Magazine").
    """
    common = set(_LOWER_WORD.findall(f"{context or ''} {response or ''}"))
    named = entities(response, common)
    if not named:
        return 0.0
    lowered = (context or "").lower()
    known = set(tokens(context))
    missing = 0
    for name in named:
        words = tokens(name)
        if name.lower() in lowered or (words and all(w in known for w in words)):
            continue
        missing += 1
    return missing / len(named)


def sentence_support(response: str, context: str, encode: Encode) -> tuple[float, float]:
    """(min, mean) over response sentences of the best cosine similarity to any context sentence."""
    return sentence_support_many([(response, context)], encode)[0]


def sentence_support_many(pairs: Sequence[tuple[str, str]], encode: Encode) -> list[tuple[float, float]]:
    """:func:`sentence_support` of many (response, context) pairs with one call of ``encode``."""
    split = [(split_sentences(r), split_sentences(c)) for r, c in pairs]
    unique = list(dict.fromkeys(s for said, given in split for s in (*said, *given)))
    if not unique:
        return [(math.nan, math.nan)] * len(pairs)
    vectors = np.asarray(encode(unique), dtype=np.float64)
    index = {s: i for i, s in enumerate(unique)}
    out = []
    for said, given in split:
        if not said or not given:
            out.append((math.nan, math.nan))
            continue
        a = vectors[[index[s] for s in said]]
        b = vectors[[index[s] for s in given]]
        best = (a @ b.T).max(axis=1)
        out.append((float(best.min()), float(best.mean())))
    return out


def grounding_signals(
    response: str, context: str, encode: Encode | None = None, *, support: tuple[float, float] | None = None
) -> GroundingSignals:
    """All context signals of one response; the embedding ones when ``encode`` (or a precomputed ``support``)."""
    rouge = rouge_precisions(response, context)
    if support is not None:
        low, mean = support
    else:
        low, mean = sentence_support(response, context, encode) if encode is not None else (math.nan, math.nan)
    return GroundingSignals(
        unsupported_token_share=unsupported_token_share(response, context),
        rouge1_precision=rouge["rouge1"],
        rouge2_precision=rouge["rouge2"],
        rougeL_precision=rouge["rougeL"],
        unsupported_number_share=unsupported_number_share(response, context),
        unsupported_entity_share=unsupported_entity_share(response, context),
        min_sentence_similarity=low,
        mean_sentence_similarity=mean,
    )
