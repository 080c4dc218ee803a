"""Grounding signals: how much of a response its (RAG) context supports. Pure functions, no I/O.

Every signal is a share or a similarity, never a count, so that none of them is a disguised length
measure (see :mod:`.model` for why raw length must stay out of the score). Tokens come from
rouge-score's tokenizer (lowercase, ``[a-z0-9]`` runs, Porter stemming), so the overlap signals and the
ROUGE precisions see the same words; stop words are scikit-learn's English list.

Named entities are found with a light capitalisation heuristic (runs of capitalised words and
acronyms; a capitalised word opening a sentence counts unless it is also written in lower case in
the response or context), not a trained tagger: good enough to notice a name
or a place the context never mentions, blind to lower-case entities and to non-Latin scripts.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from llmpulse.analyzers.text import Encode, porter_stemmer, split_sentences

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?%?")
_CAPITALISED = re.compile(r"[A-Z][\w'\u2019&.-]*|[0-9]+[A-Z][\w]*")
_WORD = re.compile(r"[\w'\u2019&.-]+")
_LOWER_WORD = re.compile(r"\b[a-z][a-z'\u2019-]*")
_CONNECTORS = frozenset({"of", "the", "de", "la", "von", "van", "for", "and", "&"})


@dataclass(frozen=True)
class GroundingSignals:
    """Context signals of one response, each in [0, 1] and oriented so that higher = less supported.

    The ``worst_*`` signals are per response sentence against its best-matching context window,
    aggregated by the worst-supported sentence (SummaC's granularity); NaN where not computable
    (the embedding ones without an encoder).
    """

    unsupported_word_share: float
    novel_number_share: float
    novel_name_share: float
    worst_unigram_unsupported: float
    worst_bigram_unsupported: float
    worst_embedding_unsupported: float = math.nan
    embedding_novelty: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokens(text: str) -> list[str]:
    """rouge-score's tokens of ``text``: lowercase alphanumeric runs, Porter-stemmed past 3 characters."""
    from rouge_score import tokenize

    return tokenize.tokenize(text or "", porter_stemmer())


def content_tokens(text: str) -> list[str]:
    """Tokens that carry meaning: stop words dropped (checked before stemming, as the list is unstemmed)."""
    from rouge_score import tokenize

    stop = _stop_words()
    raw = tokenize.tokenize(text or "", None)
    stemmer = porter_stemmer()
    return [stemmer.stem(t) if len(t) > 3 else t for t in raw if t not in stop]


def unsupported_token_share(response: str, context: str) -> float:
    """Share of the response's content tokens that never occur in the context (0 when it has none)."""
    return _missing_share(content_tokens(response), context)


def _missing_share(words: Sequence[str], context: str) -> float:
    """Share of ``words`` that are not among the context's tokens (0 when there are no words)."""
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


# Words that claim nothing: a response made only of them ("Yes!", "haha") has nothing to support.
_INTERJECTIONS = frozenset(
    {"yes", "yeah", "yep", "yup", "no", "nope", "ok", "okay", "oh", "ah", "haha", "hahaha", "lol", "hmm", "wow", "sure"}
)
WINDOW_SENTENCES = 3
"""Context windows are runs of 1 to this many consecutive sentences (a claim may span a sentence break)."""


def claim_tokens(text: str) -> list[str]:
    """Content tokens that make a claim: :func:`content_tokens` without interjections."""
    return [t for t in content_tokens(text) if t not in _INTERJECTIONS]


def claim_sentences(response: str) -> list[str]:
    """The response's sentences that claim something (at least one claim token); a bare span is one."""
    return [s for s in split_sentences(response) if claim_tokens(s)]


def context_windows(context: str, size: int = WINDOW_SENTENCES) -> list[str]:
    """Runs of 1..``size`` consecutive context sentences: what one response sentence is checked against."""
    sentences = split_sentences(context)
    return [" ".join(sentences[i : i + k]) for k in range(1, size + 1) for i in range(len(sentences) - k + 1)]


ALL_WINDOWS_UP_TO = 24
"""A context with at most this many windows (9 sentences) has every window embedded."""
CANDIDATES_PER_SIZE = 2
"""In a longer context, each claim sentence's embedding is compared only with the windows of each size
that share the most of its claim words: a retrieved document of 200 sentences has 597 windows, and
embedding them all for every call would make the analyzer's cost grow with the context, not the claims."""


def candidate_windows(said: Sequence[str], context: str, size: int = WINDOW_SENTENCES) -> list[str]:
    """The context windows the embedding signals compare the claim sentences ``said`` with (see above)."""
    texts = context_windows(context, size)
    if len(texts) <= ALL_WINDOWS_UP_TO:
        return texts
    index = _window_index(context, size)  # the same windows in the same order
    sentences = len(split_sentences(context))
    starts = [0]
    for k in range(1, size):
        starts.append(starts[-1] + max(sentences - k + 1, 0))
    starts.append(len(index))
    chosen: set[int] = set()
    for sentence in said:
        words = claim_tokens(sentence)
        for first, end in itertools.pairwise(starts):
            ranked = sorted(range(first, end), key=lambda j: (-sum(w in index[j][0] for w in words), j))
            chosen.update(ranked[:CANDIDATES_PER_SIZE])
    return [texts[j] for j in sorted(chosen)]


def _bigrams(words: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


def _window_index(context: str, size: int) -> list[tuple[set[str], set[tuple[str, str]]]]:
    """(unigrams, bigrams) of each context window, from each sentence tokenised once."""
    per_sentence = [tokens(s) for s in split_sentences(context)]
    out = []
    for k in range(1, size + 1):
        for i in range(len(per_sentence) - k + 1):
            words = [w for sentence in per_sentence[i : i + k] for w in sentence]
            out.append((set(words), _bigrams(words)))
    return out


def worst_ngram_unsupported(response: str, context: str, size: int = WINDOW_SENTENCES) -> tuple[float, float]:
    """(unigram, bigram): max over claim sentences of 1 - precision against the sentence's best window.

    Unigrams are the claim tokens (stop words would match anywhere); bigrams all tokens. A one-token
    sentence has no bigram: its bigram figure is its unigram one.
    """
    sentences = claim_sentences(response)
    if not sentences:
        return 0.0, 0.0
    windows = _window_index(context, size) or [(set(), set())]
    worst1 = worst2 = 0.0
    for sentence in sentences:
        words, grams = claim_tokens(sentence), _bigrams(tokens(sentence))
        best1 = max(sum(w in uni for w in words) / len(words) for uni, _ in windows)
        best2 = max(sum(g in bi for g in grams) / len(grams) for _, bi in windows) if grams else best1
        worst1, worst2 = max(worst1, 1.0 - best1), max(worst2, 1.0 - best2)
    return worst1, worst2


def unsupported_word_share(response: str, context: str) -> float:
    """Share of the response's claim tokens that never occur in the context (0 when it claims nothing)."""
    return _missing_share(claim_tokens(response), context)


def embedding_support_many(pairs: Sequence[tuple[str, str]], encode: Encode) -> list[tuple[float, float]]:
    """(worst_embedding_unsupported, embedding_novelty) of many (response, context) pairs, batched.

    For each claim sentence: its best window by cosine similarity; ``1 - cos`` of the worst sentence
    is the first figure. The second is how far appending the sentence moves its best window's
    embedding (``1 - cos(window, window + sentence)``, worst sentence): a copied claim or a bare span
    the window already states barely moves it, a new claim does; unlike the first figure it does not
    penalise a short answer for being short. Two ``encode`` calls in all; (0, 0) for a response that
    claims nothing, NaN for a context without sentences. Long contexts: :func:`candidate_windows`.
    """
    split = [(said, candidate_windows(said, c)) for said, c in ((claim_sentences(r), c) for r, c in pairs)]
    unique = list(dict.fromkeys(t for said, given in split for t in (*said, *given)))
    if not unique:
        return [(0.0, 0.0) if not said else (math.nan, math.nan) for said, _ in split]
    vectors = np.asarray(encode(unique), dtype=np.float64)
    index = {t: i for i, t in enumerate(unique)}
    best: list[list[tuple[str, str, float]]] = []
    for said, given in split:
        if not said or not given:
            best.append([])
            continue
        sims = vectors[[index[s] for s in said]] @ vectors[[index[w] for w in given]].T
        top = sims.argmax(axis=1)
        best.append([(s, given[j], float(sims[i, j])) for i, (s, j) in enumerate(zip(said, top, strict=True))])
    joined = list(dict.fromkeys(f"{w} {s}" for row in best for s, w, _ in row))
    moved = np.asarray(encode(joined), dtype=np.float64) if joined else np.zeros((0, vectors.shape[1]))
    where = {t: i for i, t in enumerate(joined)}
    out = []
    for (said, _given), row in zip(split, best, strict=True):
        if not said:
            out.append((0.0, 0.0))
        elif not row:
            out.append((math.nan, math.nan))
        else:
            worst = max(1.0 - sim for _, _, sim in row)
            novelty = max(1.0 - float(vectors[index[w]] @ moved[where[f"{w} {s}"]]) for s, w, _ in row)
            out.append((min(max(worst, 0.0), 1.0), min(max(novelty, 0.0), 1.0)))
    return out


def grounding_signals(
    response: str, context: str, encode: Encode | None = None, *, support: tuple[float, float] | None = None
) -> GroundingSignals:
    """All context signals of one response; the embedding ones with ``encode`` (or precomputed ``support``)."""
    if support is None:
        support = embedding_support_many([(response, context)], encode)[0] if encode is not None else None
    low, novelty = support if support is not None else (math.nan, math.nan)
    unigram, bigram = worst_ngram_unsupported(response, context)
    return GroundingSignals(
        unsupported_word_share=unsupported_word_share(response, context),
        novel_number_share=unsupported_number_share(response, context),
        novel_name_share=unsupported_entity_share(response, context),
        worst_unigram_unsupported=unigram,
        worst_bigram_unsupported=bigram,
        worst_embedding_unsupported=low,
        embedding_novelty=novelty,
    )


def grounding_signals_many(pairs: Sequence[tuple[str, str]], encode: Encode | None = None) -> list[GroundingSignals]:
    """:func:`grounding_signals` of many (response, context) pairs, the embeddings in two batched calls."""
    supports = embedding_support_many(pairs, encode) if encode is not None and pairs else [None] * len(pairs)
    return [grounding_signals(r, c, support=s) for (r, c), s in zip(pairs, supports, strict=True)]
