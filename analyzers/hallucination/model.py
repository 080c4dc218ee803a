"""One hallucination score in [0, 1] from the signals: logistic heads with stored coefficients. Pure.

A call is scored by the first head whose inputs it has: ``context`` (lexical and embedding grounding
signals, when RAG context was captured and the embedder ran), ``context_lexical`` (the same without
the embedding signals), then ``samples`` (self-consistency, when the provider returned several
choices), then ``logprobs``. Each head standardises its features, applies logistic-regression
coefficients and compares the probability with its threshold.

The two context heads are fitted by ``bench/hallucination.py --write-model`` (see
:mod:`.fit`): every grounding signal is oriented so that higher = less supported and its
weight is constrained to be >= 0, so no signal can flip its meaning; the fit weighs several labelled
domains equally and is judged leave-one-domain-out. Raw length is never a feature: in HaluEval QA
right answers are short spans and hallucinated ones whole sentences (length alone: ROC AUC 0.93), on
real traffic length follows the question, not the truth. Loading refuses a context head with a
negative weight.

The ``samples`` and ``logprobs`` heads are uncalibrated priors (``calibrated: false``, recorded in
every result): no labelled data with several samples or log-probabilities is available offline. Each
is a monotone transform of one signal with a stated midpoint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

LEXICAL_FEATURES: tuple[str, ...] = (
    "unsupported_word_share",
    "novel_number_share",
    "novel_name_share",
    "worst_unigram_unsupported",
    "worst_bigram_unsupported",
)
# ``worst_embedding_unsupported`` (1 - the best window's cosine) is computed and reported but is not a model
# feature: a bare, right span ("1923") is far from any sentence in embedding space, so it scores a short
# answer as unsupported for being short, a length proxy by another name. The fit on all three domains gave
# it weight 0; fitted on BEGIN alone it took weight and cost HaluEval QA 0.001 ROC AUC (bench/hallucination.py).
EMBEDDING_FEATURES: tuple[str, ...] = ("embedding_novelty",)
CONTEXT_FEATURES: tuple[str, ...] = LEXICAL_FEATURES + EMBEDDING_FEATURES
CONTEXT_HEADS: tuple[str, ...] = ("context", "context_lexical")
HEAD_ORDER: tuple[str, ...] = ("context", "context_lexical", "samples", "logprobs")
MODEL_FORMAT = 2
DEFAULT_MODEL_PATH = Path(__file__).with_name("hallucination_model.json")


@dataclass(frozen=True)
class LogisticHead:
    """Standardise, weigh, squash: ``sigmoid(intercept + sum(coef * (x - center) / scale))``."""

    name: str
    features: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    threshold: float
    calibrated: bool
    source: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.center) == len(self.scale) == len(self.coefficients) == n):
            raise ValueError(f"head {self.name!r}: features, center, scale and coefficients differ in length")
        if any(s <= 0 for s in self.scale):
            raise ValueError(f"head {self.name!r}: scales must be positive")
        if not 0 < self.threshold < 1:
            raise ValueError(f"head {self.name!r}: threshold must be in (0, 1), got {self.threshold}")

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The head's features of each row (a missing key is NaN)."""
        return np.array([[float(row.get(f, math.nan)) for f in self.features] for row in rows], dtype=np.float64)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a (rows, features) array; NaN features take the center (no contribution)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.features))
        z = (x - np.asarray(self.center)) / np.asarray(self.scale)
        z = np.where(np.isfinite(z), z, 0.0)
        return 1.0 / (1.0 + np.exp(-(self.intercept + z @ np.asarray(self.coefficients))))

    def score(self, signals: Mapping[str, float]) -> float:
        return float(self.scores(self.matrix([signals]))[0])

    def applies(self, signals: Mapping[str, float]) -> bool:
        """A context head needs all its features; a prior head its one."""
        values = [signals.get(f) for f in self.features]
        return all(v is not None and math.isfinite(float(v)) for v in values)


@dataclass(frozen=True)
class HallucinationModel:
    """The heads, tried in HEAD_ORDER, with the model's version and training domains; JSON on disk."""

    heads: dict[str, LogisticHead]
    version: str = ""
    training_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in CONTEXT_HEADS:
            head = self.heads.get(name)
            if head is not None and any(c < 0 for c in head.coefficients):
                raise ValueError(f"head {name!r}: grounding weights must be >= 0 (signals are oriented)")

    def head_for(self, signals: Mapping[str, float]) -> LogisticHead | None:
        for name in HEAD_ORDER:
            head = self.heads.get(name)
            if head is not None and head.applies(signals):
                return head
        return None

    def to_json(self) -> str:
        heads = {}
        for name, head in self.heads.items():
            data = asdict(head)
            data["features"] = list(head.features)
            heads[name] = data
        document = {
            "format": MODEL_FORMAT,
            "version": self.version,
            "training_domains": list(self.training_domains),
            "heads": heads,
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> HallucinationModel:
        data = json.loads(text)
        if data.get("format") != MODEL_FORMAT or not isinstance(data.get("heads"), dict):
            raise ValueError(f"not a hallucination model file (expected format {MODEL_FORMAT} with heads)")
        heads = {}
        for name, raw in data["heads"].items():
            heads[name] = LogisticHead(
                name=raw["name"],
                features=tuple(raw["features"]),
                center=tuple(float(v) for v in raw["center"]),
                scale=tuple(float(v) for v in raw["scale"]),
                coefficients=tuple(float(v) for v in raw["coefficients"]),
                intercept=float(raw["intercept"]),
                threshold=float(raw["threshold"]),
                calibrated=bool(raw["calibrated"]),
                source=str(raw.get("source", "")),
                metrics={k: float(v) for k, v in (raw.get("metrics") or {}).items()},
            )
        return cls(heads, str(data.get("version", "")), tuple(data.get("training_domains") or ()))

    @classmethod
    def load(cls, path: str | Path | None = None) -> HallucinationModel:
        """The model in ``path``, or the shipped default (context heads fitted on three domains, two priors)."""
        target = Path(path) if path else DEFAULT_MODEL_PATH
        try:
            text = target.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read hallucination model {target}: {exc.strerror or exc}") from None
        try:
            return cls.from_json(text)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{target} is not a valid hallucination model: {exc}") from None


def prior_head(name: str, feature: str, midpoint: float, slope: float, source: str) -> LogisticHead:
    """An uncalibrated one-signal head: 0.5 at ``midpoint``, rising with ``slope`` per unit of the signal."""
    return LogisticHead(
        name=name,
        features=(feature,),
        center=(midpoint,),
        scale=(1.0 / slope,),
        coefficients=(1.0,),
        intercept=0.0,
        threshold=0.5,
        calibrated=False,
        source=source,
    )


PRIOR_HEADS: dict[str, LogisticHead] = {
    "samples": prior_head(
        "samples",
        "sample_unsupported_token_share",
        midpoint=0.5,
        slope=8.0,
        source="prior: flagged when over half the answer's content words are missing from the other samples",
    ),
    "logprobs": prior_head(
        "logprobs",
        "mean_neg_logprob",
        midpoint=1.0,
        slope=3.0,
        source="prior: flagged when the mean token surprise exceeds 1 nat (mean token probability below ~0.37)",
    ),
}
