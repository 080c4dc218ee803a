"""Text helpers the scorers share: sentences, the Porter stemmer, and the shape of an embedding function."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

Encode = Callable[[Sequence[str]], np.ndarray]
"""Texts to L2-normalised embedding rows (one per text), e.g. ``Embedder.encode``."""

# A sentence ends at . ! ? (or a newline) followed by space or directly by a capital letter: context
# passages glued together without a space ("...the 19th century.First for Women is...") still split.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s+|(?=[A-Z\"“]))|\n+")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` by a punctuation heuristic (no model data needed, unlike nltk's punkt)."""
    parts = (p.strip() for p in _SENTENCE_END.split(text or ""))
    return [p for p in parts if p and any(ch.isalnum() for ch in p)]


@lru_cache(maxsize=1)
def porter_stemmer() -> Any:
    """nltk's Porter stemmer, the one rouge-score uses, made once."""
    from nltk.stem import porter

    return porter.PorterStemmer()
