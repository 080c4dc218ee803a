"""Two-sample tests on embedding matrices: is the current window drawn from the reference distribution?

Pure numpy/scipy/scikit-learn; no I/O. Three quantities, in decreasing order of authority:

* :func:`mmd_permutation_test` - the alarm. Unbiased MMD^2 with a Gaussian RBF kernel whose width comes
  from the median heuristic on the pooled sample, and a permutation p-value
  ``(1 + #{perm >= observed}) / (1 + B)``. Under "no drift" the labels are exchangeable, so the test
  holds its level at any sample size (alibi-detect's MMDDrift does the same; Evidently's reference-only
  bootstrap does not, see shared/reference/analyzers.md section 1.2).
* :func:`classifier_test` - a second opinion that also says *how separable* the windows are: logistic
  regression with 2-fold cross-fitting (each half scored by a model trained on the other half), the
  mean held-out ROC AUC of the two folds as the magnitude. P-value: within one fold the scores come from a model
  that never saw those rows, so under "no drift" current and reference scores are exchangeable and the
  one-sided Mann-Whitney U test (U / (n1 n2) is exactly that fold's AUC) is valid. The two folds share
  data, so their p-values are combined with Bonferroni (``2 * min``), valid under any dependence. Pooling
  the out-of-fold scores of k folds into one Mann-Whitney test is *not* valid (the folds' scores are
  dependent; the reference notes measured a false-positive rate of 0.10-0.17 at alpha 0.05).
* :func:`centroid_cosine_distance` - a magnitude only (no test): 1 - cos(mean current, mean reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MMDResult:
    mmd2: float  # unbiased MMD^2 of the observed split
    p_value: float
    permutations: int
    bandwidth: float  # median pairwise squared distance: k(a, b) = exp(-|a - b|^2 / bandwidth)
    n_current: int
    n_reference: int


@dataclass(frozen=True)
class ClassifierResult:
    auc: float  # mean held-out ROC AUC of the two folds, "current vs reference"; 0.5 = indistinguishable
    p_value: float
    fold_aucs: tuple[float, float]
    fold_p_values: tuple[float, float]


def subsample(x: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``cap`` rows of ``x``, drawn without replacement (the kernel costs O(n^2) memory and time)."""
    if len(x) <= cap:
        return x
    return x[np.sort(rng.choice(len(x), size=cap, replace=False))]


def _squared_distances(z: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", z, z)
    d2 = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def median_bandwidth(d2: np.ndarray) -> float:
    """Median of the off-diagonal pairwise squared distances (the median heuristic), at least tiny > 0."""
    upper = d2[np.triu_indices(len(d2), k=1)]
    median = float(np.median(upper)) if upper.size else 1.0
    return median if median > 0 else 1e-12


def mmd_permutation_test(
    current: np.ndarray,
    reference: np.ndarray,
    *,
    permutations: int = 500,
    seed: int = 0,
    max_samples: int | None = 2000,
    chunk: int = 128,
) -> MMDResult:
    """Unbiased MMD^2 with an RBF kernel and its permutation p-value.

    Vectorised: with the pooled kernel matrix K and one 0/1 column per labelling in A, every quantity
    of every permutation comes from ``K @ A`` (one matrix product per chunk of permutations):
    ``a'Ka`` (within current), ``a'r`` with r = K 1, hence within-reference and cross sums too.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(current, dtype=np.float32)
    y = np.asarray(reference, dtype=np.float32)
    if max_samples is not None:
        x, y = subsample(x, max_samples, rng), subsample(y, max_samples, rng)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"the MMD test needs at least 2 rows per sample, got {n} and {m}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    z = np.concatenate([x, y])
    d2 = _squared_distances(z)
    bandwidth = median_bandwidth(d2)
    kernel = np.exp(-d2 / np.float32(bandwidth), dtype=np.float32)
    del d2
    total_n = n + m
    row_sums = kernel.sum(axis=1, dtype=np.float64)
    grand = float(row_sums.sum())

    def statistics(labels: np.ndarray) -> np.ndarray:
        """MMD^2_u of each labelling (columns of a 0/1 matrix with n ones each)."""
        ka = kernel @ labels
        within_x = np.einsum("ij,ij->j", labels, ka, dtype=np.float64)  # a'Ka
        a_r = row_sums @ labels  # a'K1
        cross = a_r - within_x  # a'K(1-a)
        within_y = grand - 2.0 * a_r + within_x  # (1-a)'K(1-a)
        # the RBF kernel's diagonal is 1: remove it from the within sums (the unbiased estimator)
        return (within_x - n) / (n * (n - 1)) + (within_y - m) / (m * (m - 1)) - 2.0 * cross / (n * m)

    observed_labels = np.zeros((total_n, 1), dtype=np.float32)
    observed_labels[:n] = 1.0
    observed = float(statistics(observed_labels)[0])
    exceed = 0
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        chosen = np.argsort(rng.random((size, total_n)), axis=1)[:, :n]
        labels = np.zeros((size, total_n), dtype=np.float32)
        np.put_along_axis(labels, chosen, 1.0, axis=1)
        exceed += int(np.count_nonzero(statistics(labels.T) >= observed))
    return MMDResult(
        mmd2=observed,
        p_value=(1 + exceed) / (1 + permutations),
        permutations=permutations,
        bandwidth=bandwidth,
        n_current=n,
        n_reference=m,
    )


def classifier_test(
    current: np.ndarray, reference: np.ndarray, *, seed: int = 0, max_samples: int | None = 2000, c: float = 1.0
) -> ClassifierResult:
    """Cross-fitted logistic-regression domain classifier: AUC and a valid one-sided p-value (module doc)."""
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    x = np.asarray(current, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if max_samples is not None:
        x, y = subsample(x, max_samples, rng), subsample(y, max_samples, rng)
    if min(len(x), len(y)) < 4:
        raise ValueError(f"the classifier test needs at least 4 rows per sample, got {len(x)} and {len(y)}")
    features = np.concatenate([x, y])
    labels = np.concatenate([np.ones(len(x), dtype=int), np.zeros(len(y), dtype=int)])
    fold_aucs: list[float] = []
    fold_ps: list[float] = []
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    for train, test in folds.split(features, labels):
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(features[train], labels[train])
        fold_scores = model.decision_function(features[test])
        held_cur = fold_scores[labels[test] == 1]
        held_ref = fold_scores[labels[test] == 0]
        u = mannwhitneyu(held_cur, held_ref, alternative="greater")
        fold_aucs.append(float(u.statistic) / (len(held_cur) * len(held_ref)))
        fold_ps.append(float(u.pvalue))
    return ClassifierResult(
        auc=float(np.mean(fold_aucs)),
        p_value=min(1.0, 2.0 * min(fold_ps)),
        fold_aucs=(fold_aucs[0], fold_aucs[1]),
        fold_p_values=(fold_ps[0], fold_ps[1]),
    )


def centroid_cosine_distance(current: np.ndarray, reference: np.ndarray) -> float:
    """1 - cosine similarity of the two mean vectors (0 = same direction); a magnitude, not a test."""
    a = np.asarray(current, dtype=np.float64).mean(axis=0)
    b = np.asarray(reference, dtype=np.float64).mean(axis=0)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denominator == 0.0:
        return float("nan")
    return float(1.0 - (a @ b) / denominator)
