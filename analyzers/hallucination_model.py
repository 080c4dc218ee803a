"""One hallucination score in [0, 1] from the signals: logistic heads with stored coefficients. Pure.

A call is scored by the first head whose inputs it has: ``context`` (grounding signals, when RAG
context was captured), then ``samples`` (self-consistency, when the provider returned several
choices), then ``logprobs``. Each head standardises its features, applies logistic-regression
coefficients and compares the probability with its threshold.

The ``context`` head is fitted on labelled data (``bench/hallucination.py --write-model`` fits it on
HaluEval QA and writes ``hallucination_model.json``): features are standardised, a NaN feature (no
embedder, say) takes the calibration mean and so contributes nothing, and the threshold maximises
balanced accuracy on the calibration data.

Raw length is never a feature, and the calibration weights balance the two classes within each
answer-length band (``balanced_weights``): in HaluEval right answers are short spans and hallucinated
ones whole sentences, so length alone reaches ROC AUC 0.93 there, but on real traffic length follows
the question, not the truth (0.47 on HaluEval's general set). A model allowed to learn length, or a
count that stands in for it, would learn the data set's quirk instead of grounding.

The ``samples`` and ``logprobs`` heads are uncalibrated priors (``calibrated: false``, recorded in
every result): no labelled data with several samples or log-probabilities is available offline. Each
is a monotone transform of one signal with a stated midpoint; fit your own with :func:`fit_head` on
labelled calls when you have them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONTEXT_FEATURES: tuple[str, ...] = (
    "unsupported_token_share",
    "rouge1_precision",
    "rouge2_precision",
    "rougeL_precision",
    "unsupported_number_share",
    "unsupported_entity_share",
    "min_sentence_similarity",
    "mean_sentence_similarity",
)
SAMPLE_FEATURES: tuple[str, ...] = ("sample_unsupported_token_share",)
LOGPROB_FEATURES: tuple[str, ...] = ("mean_neg_logprob",)
HEAD_ORDER: tuple[str, ...] = ("context", "samples", "logprobs")
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
        """The head needs its first (primary) feature; the others may be NaN."""
        value = signals.get(self.features[0])
        return value is not None and math.isfinite(float(value))


@dataclass(frozen=True)
class HallucinationModel:
    """The heads, tried in HEAD_ORDER; serialised to and from JSON."""

    heads: dict[str, LogisticHead]

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
        return json.dumps({"format": 1, "heads": heads}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> HallucinationModel:
        data = json.loads(text)
        if data.get("format") != 1 or not isinstance(data.get("heads"), dict):
            raise ValueError("not a hallucination model file (expected format 1 with heads)")
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
        return cls(heads)

    @classmethod
    def load(cls, path: str | Path | None = None) -> HallucinationModel:
        """The model in ``path``, or the shipped default (context head fitted on HaluEval QA, two priors)."""
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


def length_strata(word_counts: Sequence[int], edges: Sequence[int] = (2, 3, 4, 5, 6, 8, 11, 15)) -> np.ndarray:
    """Answer-length bands (by word count) for :func:`balanced_weights`."""
    return np.digitize(np.asarray(word_counts), list(edges))


def balanced_weights(strata: Sequence[Any], labels: Sequence[int]) -> np.ndarray:
    """Sample weights that give both classes equal weight inside every stratum.

    Within a stratum a feature then cannot separate the classes through the stratum variable (here:
    length). Strata holding one class only get weight 0: they can teach nothing but the stratum.
    """
    strata = np.asarray(strata)
    y = np.asarray(labels)
    weights = np.zeros(len(y), dtype=np.float64)
    for value in np.unique(strata):
        inside = strata == value
        n0, n1 = int(np.sum(inside & (y == 0))), int(np.sum(inside & (y == 1)))
        if n0 and n1:
            weights[inside & (y == 0)] = inside.sum() / (2.0 * n0)
            weights[inside & (y == 1)] = inside.sum() / (2.0 * n1)
    if not weights.any():
        raise ValueError("no stratum holds both classes: cannot balance")
    return weights


def best_threshold(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The cut-off maximising balanced accuracy (Youden's J) on these scores."""
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(labels, scores, sample_weight=weights)
    best = int(np.argmax(tpr - fpr))
    return float(cuts[best]) if np.isfinite(cuts[best]) else float(np.max(scores))


def fit_head(
    name: str,
    x: np.ndarray,
    labels: Sequence[int],
    features: Sequence[str],
    *,
    strata: Sequence[Any] | None = None,
    regularization: float = 1.0,
    source: str = "",
) -> LogisticHead:
    """Fit a calibrated head: logistic regression on standardised features, threshold by balanced accuracy.

    ``strata`` (e.g. :func:`length_strata` of the answers) balances the classes within each stratum.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    if x.ndim != 2 or x.shape[1] != len(features) or len(y) != len(x):
        raise ValueError("x must be (rows, features) with one label per row")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("labels must contain both 0 and 1")
    finite = np.isfinite(x)
    counts = np.maximum(finite.sum(axis=0), 1)  # an all-NaN feature (no embedder) gets center 0, scale 1
    center = np.where(finite, x, 0.0).sum(axis=0) / counts
    spread = np.sqrt(np.where(finite, (x - center) ** 2, 0.0).sum(axis=0) / counts)
    scale = np.where(spread > 1e-12, spread, 1.0)
    z = np.where(np.isfinite(x), (x - center) / scale, 0.0)
    weights = balanced_weights(strata, y) if strata is not None else None
    model = LogisticRegression(C=regularization, max_iter=1000)
    model.fit(z, y, sample_weight=weights)
    probabilities = model.predict_proba(z)[:, 1]
    return LogisticHead(
        name=name,
        features=tuple(features),
        center=tuple(float(v) for v in center),
        scale=tuple(float(v) for v in scale),
        coefficients=tuple(float(v) for v in model.coef_[0]),
        intercept=float(model.intercept_[0]),
        threshold=min(max(best_threshold(probabilities, y, weights), 1e-6), 1 - 1e-6),
        calibrated=True,
        source=source,
    )
