"""Hallucination scores inside an app (a guardrail): :func:`score` and :func:`score_many`.

The bundled model and the embedding model are loaded once per process, on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

_defaults_lock = threading.Lock()
_defaults: dict[str, Any] = {}


def _default_scorer() -> tuple[Any, Any]:
    """The bundled model and an embedder, made once per process (the embedding model loads once too)."""
    with _defaults_lock:
        if not _defaults:
            from llmpulse.analyzers.embeddings import Embedder

            from .model import HallucinationModel

            _defaults["model"] = HallucinationModel.load()
            _defaults["encode"] = Embedder().encode
        return _defaults["model"], _defaults["encode"]


def score_many(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """Hallucination scores in [0, 1] (higher = more likely unsupported) of (context, response) pairs, batched.

    Every pair is scored by its grounding signals (a response that claims nothing scores low, an empty
    context supports nothing); the embedding signals of all pairs are computed in two batched calls.
    """
    from .grounding import grounding_signals_many
    from .signals import score_signals

    model, encode = _default_scorer()
    found = grounding_signals_many([(str(r or ""), str(c or "")) for c, r in pairs], encode)
    verdicts = [score_signals(g.as_dict(), model) for g in found]
    return [float(v.score) if v is not None else 0.0 for v in verdicts]


def score(context: str, response: str) -> float:
    """The hallucination score of one response against its context: :func:`score_many` of one pair."""
    return score_many([(context, response)])[0]
