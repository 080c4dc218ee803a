"""Prompt-injection signals on a prompt: known attack patterns and similarity to known attacks. Pure.

Two signals, combined by taking the larger:

* **patterns**: case-insensitive regexes for documented attack families (instruction override,
  system-prompt exfiltration, role-play jailbreaks, refusal suppression, fake delimiters and chat
  tokens, encoding tricks, indirect injection), each with a weight; matches in different families
  combine as a noisy-OR, ``1 - prod(1 - w)``, so two independent tells weigh more than one.
* **similarity**: the best cosine similarity (all-MiniLM-L6-v2) between the prompt, its sentences and
  pairs of sentences, and a bank of known attack phrasings; mapped to [0, 1] by a logistic around the
  threshold calibrated on ordinary prompts (``bench/injection.py --calibrate``), so a paraphrase of a
  known attack scores high even when no regex fires.

The bank and its sources live in ``injection_patterns.json``. Both signals catch what resembles known
attacks; a novel technique, or one in another language than English, can pass (see the bench).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from llmpulse.analyzers.text import Encode, split_sentences

DEFAULT_BANK_PATH = Path(__file__).with_name("injection_patterns.json")
SIMILARITY_WIDTH = 0.03  # logistic width around the threshold: +-0.03 cosine takes the score to 0.27 / 0.73
MAX_WINDOW_CHARS = 1000
MAX_WINDOWS = 16
_SPACED_LETTERS = re.compile(r"\b\w(?: \w){2,}\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_MIXED_TOKEN = re.compile(r"\S*[A-Za-z]\S*")


@dataclass(frozen=True)
class Pattern:
    id: str
    category: str
    weight: float
    source: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class AttackBank:
    """Patterns, example attacks and the similarity threshold, as loaded from the bank file."""

    patterns: tuple[Pattern, ...]
    attacks: tuple[dict[str, str], ...]
    similarity_threshold: float
    sources: dict[str, str] = field(default_factory=dict)
    calibration: str = ""

    @property
    def attack_texts(self) -> list[str]:
        return [a["text"] for a in self.attacks]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackBank:
        if data.get("format") != 1:
            raise ValueError("not an attack bank (expected format 1)")
        sources = dict(data.get("sources") or {})
        patterns = []
        for raw in data.get("patterns") or []:
            weight = float(raw["weight"])
            if not 0 < weight <= 1:
                raise ValueError(f"pattern {raw['id']}: weight must be in (0, 1], got {weight}")
            if raw.get("source") not in sources:
                raise ValueError(f"pattern {raw['id']}: unknown source {raw.get('source')!r}")
            try:
                compiled = re.compile(raw["regex"], re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"pattern {raw['id']}: bad regex: {exc}") from None
            patterns.append(Pattern(raw["id"], raw["category"], weight, raw["source"], compiled))
        attacks = tuple({k: str(v) for k, v in a.items()} for a in data.get("attacks") or [])
        for attack in attacks:
            if attack.get("source") not in sources:
                raise ValueError(f"attack {attack.get('text', '')[:40]!r}: unknown source {attack.get('source')!r}")
        return cls(
            patterns=tuple(patterns),
            attacks=attacks,
            similarity_threshold=float(data["similarity_threshold"]),
            sources=sources,
            calibration=str(data.get("similarity_calibration", "")),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> AttackBank:
        target = Path(path) if path else DEFAULT_BANK_PATH
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read attack bank {target}: {exc}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{target} is not a valid attack bank: missing or bad {exc}") from None


@lru_cache(maxsize=4)
def default_bank() -> AttackBank:
    return AttackBank.load()


@dataclass(frozen=True)
class InjectionScore:
    """One prompt's verdict and the evidence behind it."""

    score: float
    flagged: bool
    pattern_score: float
    similarity: float
    similarity_score: float
    matched: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    nearest_attack: int | None = None

    def signals(self) -> dict[str, float]:
        return {
            "pattern_score": self.pattern_score,
            "similarity": self.similarity,
            "similarity_score": self.similarity_score,
        }


def normalise(text: str) -> str:
    """NFKC (full-width and styled letters become plain) and single spaces, so look-alikes still match."""
    return re.sub(r"[ \t]+", " ", unicodedata.normalize("NFKC", text or ""))


def deobfuscate(text: str) -> str:
    """Undo two cheap obfuscations: letter-spaced words ("i g n o r e") and digits for letters ("1gn0re")."""
    joined = _SPACED_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), text or "")
    return _MIXED_TOKEN.sub(lambda m: m.group(0).translate(_LEET), joined)


def match_patterns(text: str, patterns: Sequence[Pattern]) -> tuple[float, list[Pattern]]:
    """Noisy-OR of the strongest match per category, and the patterns that matched.

    Each pattern is tried on the raw text, its NFKC form and its de-obfuscated form.
    """
    nfkc = unicodedata.normalize("NFKC", text or "")
    variants = list(dict.fromkeys([text or "", normalise(text), normalise(deobfuscate(nfkc))]))
    matched = [p for p in patterns if any(p.regex.search(v) for v in variants)]
    strongest: dict[str, float] = {}
    for pattern in matched:
        strongest[pattern.category] = max(strongest.get(pattern.category, 0.0), pattern.weight)
    score = 1.0 - math.prod(1.0 - w for w in strongest.values())
    return score, matched


def text_windows(text: str) -> list[str]:
    """The prompt (clipped) and its sentences, at most MAX_WINDOWS: an attack hidden in a long text
    is compared on its own, not diluted by the text around it."""
    windows = [(text or "").strip()[:MAX_WINDOW_CHARS]]
    windows += [s[:MAX_WINDOW_CHARS] for s in split_sentences(text)]
    unique = [w for w in dict.fromkeys(windows) if w]
    return unique[:MAX_WINDOWS]


def nearest_attacks(texts: Sequence[str], bank_vectors: np.ndarray, encode: Encode) -> list[tuple[float, int]]:
    """(best cosine similarity, index of that attack) for each text, over all its windows; one encode call."""
    windows = [text_windows(t) for t in texts]
    unique = list(dict.fromkeys(w for ws in windows for w in ws))
    if not unique:
        return [(math.nan, -1)] * len(texts)
    vectors = np.asarray(encode(unique), dtype=np.float64)
    similarity = vectors @ np.asarray(bank_vectors, dtype=np.float64).T
    position = {w: i for i, w in enumerate(unique)}
    out = []
    for ws in windows:
        if not ws:
            out.append((math.nan, -1))
            continue
        block = similarity[[position[w] for w in ws]]
        flat = int(np.argmax(block))
        out.append((float(block.flat[flat]), flat % block.shape[1]))
    return out


def similarity_score(similarity: float, threshold: float, width: float = SIMILARITY_WIDTH) -> float:
    """0.5 at the calibrated threshold, towards 1 above it; 0 when there is no similarity."""
    if not math.isfinite(similarity):
        return 0.0
    return 1.0 / (1.0 + math.exp(-(similarity - threshold) / width))


def score_prompts(
    texts: Sequence[str],
    bank: AttackBank | None = None,
    encode: Encode | None = None,
    *,
    threshold: float = 0.5,
    bank_vectors: np.ndarray | None = None,
) -> list[InjectionScore]:
    """Scores of many prompts; the similarity signal only when ``encode`` is given."""
    bank = bank or default_bank()
    nearest: list[tuple[float, int]] = [(math.nan, -1)] * len(texts)
    if encode is not None and bank.attacks:
        vectors = bank_vectors if bank_vectors is not None else encode(bank.attack_texts)
        nearest = nearest_attacks(texts, vectors, encode)
    out = []
    for text, (similarity, index) in zip(texts, nearest, strict=True):
        by_pattern, matched = match_patterns(text, bank.patterns)
        by_similarity = similarity_score(similarity, bank.similarity_threshold)
        score = max(by_pattern, by_similarity)
        out.append(
            InjectionScore(
                score=score,
                flagged=score >= threshold,
                pattern_score=by_pattern,
                similarity=similarity,
                similarity_score=by_similarity,
                matched=tuple(p.id for p in matched),
                categories=tuple(dict.fromkeys(p.category for p in matched)),
                nearest_attack=index if index >= 0 else None,
            )
        )
    return out
