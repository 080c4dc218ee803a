"""Fitting the context head across domains: sign-constrained logistic regression, leave-one-domain-out.

Why sign-constrained: every context signal is oriented so that higher = less supported, so a weight
below zero would mean "more unsupported content = more grounded", which is never true; an
unconstrained fit learns such weights from one data set's artefacts (HaluEval QA: right answers are
short spans, hallucinated ones fluent sentences restating the passage) and they flip on the next data
set. Here the weights of the standardised signals are bounded below by 0 (scipy's L-BFGS-B), a
signal can only be used in its meaningful direction or dropped.

Why domain weights: each training domain weighs the same in the fit, and within a domain both
classes weigh the same, so the largest or most imbalanced data set does not set the model alone.

The labelled dev domains are files of public data sets in one directory, loaded by
:func:`load_domains`: HaluEval QA-500 (``halueval_qa_500.jsonl``, two answers per passage), BEGIN WoW
(``begin_wow_dev.tsv`` + ``begin_wow_test.tsv``) and BEGIN CMU-DoG (``begin_cmudog_dev.tsv``),
"Generic" responses left out.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model import LogisticHead

DOMAIN_FILES: dict[str, tuple[str, ...]] = {
    "halueval_qa": ("halueval_qa_500.jsonl",),
    "begin_wow": ("begin_wow_dev.tsv", "begin_wow_test.tsv"),
    "begin_cmudog": ("begin_cmudog_dev.tsv",),
}
BEGIN_LABELS = {"Not fully attributable": 1, "Fully attributable": 0}


@dataclass(frozen=True)
class Domain:
    """One labelled data set: (context, response) pairs, labels (1 = unsupported) and a group per pair."""

    name: str
    pairs: list[tuple[str, str]]
    labels: np.ndarray
    groups: np.ndarray


def _read_begin(path: Path) -> list[tuple[str, str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            (r["knowledge"], r["response"], BEGIN_LABELS[r["begin_label"]])
            for r in rows
            if r["begin_label"] in BEGIN_LABELS
        ]


def load_domain(name: str, data_dir: Path, limit: int | None = None, seed: int = 0) -> Domain:
    """One dev domain; ``limit`` keeps a seeded sample of that many groups (a passage's answers stay together)."""
    rows: list[tuple[str, str, int, int]] = []
    for file in DOMAIN_FILES[name]:
        path = data_dir / file
        if file.endswith(".jsonl"):
            for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                item = json.loads(line)
                rows.append((item["knowledge"], item["right_answer"], 0, index))
                rows.append((item["knowledge"], item["hallucinated_answer"], 1, index))
        else:
            offset = len(rows)
            rows.extend((c, r, y, offset + i) for i, (c, r, y) in enumerate(_read_begin(path)))
    if limit is not None:
        groups = np.unique([g for *_, g in rows])
        keep = set(np.random.default_rng(seed).permutation(groups)[:limit].tolist())
        rows = [r for r in rows if r[3] in keep]
    return Domain(
        name=name,
        pairs=[(c, r) for c, r, _, _ in rows],
        labels=np.array([y for _, _, y, _ in rows], dtype=int),
        groups=np.array([g for *_, g in rows], dtype=int),
    )


def load_domains(data_dir: Path, limit: int | None = None, seed: int = 0) -> dict[str, Domain]:
    """Every dev domain found in ``data_dir`` (all three when the shared data is there)."""
    found = {}
    for name, files in DOMAIN_FILES.items():
        if all((data_dir / f).exists() for f in files):
            found[name] = load_domain(name, data_dir, limit, seed)
    return found


def domain_weights(domains: Sequence[str], labels: Sequence[int]) -> np.ndarray:
    """Weights giving every domain the same total and both classes the same share inside each domain."""
    domains, y = np.asarray(domains), np.asarray(labels)
    weights = np.zeros(len(y), dtype=np.float64)
    names = np.unique(domains)
    for name in names:
        for label in (0, 1):
            inside = (domains == name) & (y == label)
            if inside.any():
                weights[inside] = len(y) / (len(names) * 2.0 * inside.sum())
    return weights


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) of each column over its finite values (an all-NaN column: 0 and 1)."""
    finite = np.isfinite(x)
    counts = np.maximum(finite.sum(axis=0), 1)
    center = np.where(finite, x, 0.0).sum(axis=0) / counts
    spread = np.sqrt(np.where(finite, (x - center) ** 2, 0.0).sum(axis=0) / counts)
    return center, np.where(spread > 1e-12, spread, 1.0)


def fit_nonnegative_logistic(
    z: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-2
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression with every coefficient >= 0 (free intercept), ridge ``l2``."""
    from scipy.optimize import minimize

    d = z.shape[1]
    w = weights / weights.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, intercept = theta[:d], theta[d]
        margin = z @ coef + intercept
        p = 1.0 / (1.0 + np.exp(-margin))
        nll = np.sum(w * (np.logaddexp(0.0, margin) - y * margin))
        residual = w * (p - y)
        grad = np.r_[z.T @ residual + 2 * l2 * coef, residual.sum()]
        return float(nll + l2 * coef @ coef), grad

    bounds = [(0.0, None)] * d + [(None, None)]
    result = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return np.maximum(result.x[:d], 0.0), float(result.x[d])


def weighted_threshold(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """The cut-off maximising weighted balanced accuracy (Youden's J) on these scores."""
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(labels, scores, sample_weight=weights)
    best = int(np.argmax(tpr - fpr))
    return float(cuts[best]) if np.isfinite(cuts[best]) else float(np.max(scores))


def fit_context_head(
    x: np.ndarray,
    labels: Sequence[int],
    domains: Sequence[str],
    features: Sequence[str],
    *,
    l2: float = 1e-2,
    source: str = "",
) -> LogisticHead:
    """The ``context`` head: standardised signals, non-negative weights, domain-balanced, Youden threshold."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    if x.ndim != 2 or x.shape[1] != len(features) or len(y) != len(x):
        raise ValueError("x must be (rows, features) with one label per row")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("labels must contain both 0 and 1")
    center, scale = standardise(x)
    z = np.where(np.isfinite(x), (x - center) / scale, 0.0)
    weights = domain_weights(domains, y)
    coef, intercept = fit_nonnegative_logistic(z, y.astype(np.float64), weights, l2)
    probabilities = 1.0 / (1.0 + np.exp(-(z @ coef + intercept)))
    threshold = weighted_threshold(probabilities, y, weights)
    return LogisticHead(
        name="context",
        features=tuple(features),
        center=tuple(float(v) for v in center),
        scale=tuple(float(v) for v in scale),
        coefficients=tuple(float(v) for v in coef),
        intercept=intercept,
        threshold=min(max(threshold, 1e-6), 1 - 1e-6),
        calibrated=True,
        source=source,
    )
