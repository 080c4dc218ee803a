"""Two-sample tests on embedding matrices: is the current window drawn from the reference distribution?

Pure numpy/scipy/scikit-learn; no I/O. In decreasing order of authority:

* :func:`aggregated_test` - the alarm (through :func:`two_sample_test`): MMD^2 at several Gaussian bandwidths
  plus counts of current rows among the pooled sample's most isolated rows, all on one set of
  permutations, the smallest component p-value recalibrated by the permutation distribution of that
  minimum (MMDAgg's aggregation, single level). Power at a 5 % mixture is several times the single
  MMD's (bench/drift.py), with the same exact level.
* :func:`mmd_permutation_test` - the previous alarm, kept for comparison. Unbiased MMD^2 with a Gaussian RBF kernel whose width comes
  from the median heuristic on the pooled sample, and a permutation p-value
  ``(1 + #{perm >= observed}) / (1 + B)``. Under "no drift" the labels are exchangeable, so the test
  holds its level at any sample size (alibi-detect's MMDDrift does the same; Evidently's MMD, whose
  null is bootstrapped from the reference window alone, flags drift on unchanged data).
* :func:`classifier_test` - a second opinion that also says *how separable* the windows are: logistic
  regression with 2-fold cross-fitting (each half scored by a model trained on the other half), the
  mean held-out ROC AUC of the two folds as the magnitude. P-value: within one fold the scores come from a model
  that never saw those rows, so under "no drift" current and reference scores are exchangeable and the
  one-sided Mann-Whitney U test (U / (n1 n2) is exactly that fold's AUC) is valid. The two folds share
  data, so their p-values are combined with Bonferroni (``2 * min``), valid under any dependence. Pooling
  the out-of-fold scores of k folds into one Mann-Whitney test is *not* valid (the folds' scores are
  dependent: on two windows drawn from one pool of real queries, 5 folds pooled raised a false alarm in
  10-17 % of runs at alpha 0.05).
* :func:`centroid_cosine_distance` - a magnitude only (no test): 1 - cos(mean current, mean reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
    d2 = z @ z.T
    d2 *= -2.0  # in place: one N x N buffer instead of four
    d2 += norms[:, None]
    d2 += norms[None, :]
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


# -- the aggregated test (the drift alarm) -------------------------------------------------------------

GAUSSIAN_SCALES = (1.0, 4.0)  # bandwidths as multiples of the median pairwise squared distance
NEIGHBOURS = 10  # k of the k-nearest-neighbour distance that scores how isolated a text is
TAIL_SHARES = (0.02, 0.05, 0.1, 0.2)  # the most isolated shares of the pooled sample whose labels are counted


@dataclass(frozen=True)
class AggregatedResult:
    """Outcome of :func:`aggregated_test`; ``statistic`` is what the p-value calibrates."""

    statistic: float  # -log10 of the smallest per-component permutation p-value (higher = stronger evidence)
    p_value: float  # of the aggregate: the min-p recalibrated by the same permutations
    permutations: int
    components: tuple[str, ...]  # the kernels and tail counts aggregated
    component_values: tuple[float, ...]  # each component's observed statistic
    component_p_values: tuple[float, ...]  # each one's own permutation p-value (not corrected)
    mmd2: float  # unbiased MMD^2 with the median-bandwidth Gaussian kernel: a readable magnitude
    bandwidth: float  # the median pairwise squared distance of the pooled sample
    n_current: int
    n_reference: int


def check_samples(current: Any, reference: Any, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as float32 matrices of one width, or a ValueError that says what is wrong."""
    x = np.asarray(current, dtype=np.float32)
    y = np.asarray(reference, dtype=np.float32)
    for name, a in (("current", x), ("reference", y)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (rows = texts, columns = dimensions), got shape {a.shape}")
        if len(a) < minimum:
            raise ValueError(f"the two-sample test needs at least {minimum} rows per sample, {name} has {len(a)}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"current and reference differ in width: {x.shape[1]} vs {y.shape[1]} dimensions")
    return x, y


def _labelings(n: int, total: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 matrix (total x permutations + 1): column 0 the observed split (current first), then random ones."""
    rows = np.zeros((permutations + 1, total), dtype=np.float32)
    rows[:, :n] = 1.0
    rows[1:] = rng.permuted(rows[1:], axis=1)
    return np.ascontiguousarray(rows.T)


def _mmd2_columns(kernel: np.ndarray, labels: np.ndarray, n: int, m: int) -> np.ndarray:
    """Unbiased MMD^2 of every labelling (columns of ``labels``); ``kernel`` has a zero diagonal."""
    ka = kernel @ labels
    within_x = np.einsum("ij,ij->j", labels, ka, dtype=np.float64)
    row_sums = kernel.sum(axis=1, dtype=np.float64)
    a_r = row_sums @ labels
    within_y = float(row_sums.sum()) - 2.0 * a_r + within_x
    return within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2.0 * (a_r - within_x) / (n * m)


def _isolation_order(d2: np.ndarray, rng: np.random.Generator, k: int, rows_per_block: int = 256) -> np.ndarray:
    """Row indices from most to least isolated (largest mean squared distance to their k nearest neighbours
    in the pooled sample); ties broken at random, so the order never depends on the labels. The k smallest
    of each row are found a block of rows at a time: ``np.partition`` copies what it sorts."""
    total = len(d2)
    k = min(k, total - 1)
    score = np.empty(total, dtype=np.float64)
    for start in range(0, total, rows_per_block):
        block = d2[start : start + rows_per_block].copy()
        block[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not its own neighbour
        score[start : start + len(block)] = np.partition(block, k - 1, axis=1)[:, :k].mean(axis=1, dtype=np.float64)
    return np.lexsort((rng.random(total), -score))


def _raise_to(kernel: np.ndarray, exponent: float) -> None:
    """``kernel **= exponent`` in place, fast: squarings for 2, 4, 8... (``np.power`` on float32 is some 20x
    slower than ``np.exp``), else through the logarithm (``log 0 = -inf`` maps back to 0)."""
    squarings = math.log2(exponent)
    if squarings.is_integer() and squarings >= 0:
        for _ in range(int(squarings)):
            np.multiply(kernel, kernel, out=kernel)
        return
    with np.errstate(divide="ignore"):
        np.log(kernel, out=kernel)
    kernel *= np.float32(exponent)
    np.exp(kernel, out=kernel)


def _min_p_calibration(stats: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Per-component permutation p-values of every column, and the p-value of their minimum.

    ``stats`` is (components x (B + 1)), column 0 observed, larger = more evidence. Every column's p-value
    uses the same B + 1 values, a symmetric function of them, so under exchangeability the columns' minima
    are exchangeable too and ranking the observed minimum among them is a valid single-level test.
    """
    columns = stats.shape[1]
    ordered = np.sort(stats, axis=1)
    p = np.empty_like(stats)
    for row in range(len(stats)):
        p[row] = (columns - np.searchsorted(ordered[row], stats[row], side="left")) / columns
    smallest = p.min(axis=0)
    return p[:, 0], float(smallest[0]), float(np.count_nonzero(smallest <= smallest[0]) / columns)


def aggregated_test(
    current: Any,
    reference: Any,
    *,
    permutations: int = 500,
    seed: int = 0,
    max_samples: int | None = 2000,
    gaussian_scales: tuple[float, ...] = GAUSSIAN_SCALES,
    tail_shares: tuple[float, ...] = TAIL_SHARES,
    neighbours: int = NEIGHBOURS,
) -> AggregatedResult:
    """MMDAgg-style two-sample test: several statistics, one set of permutations, min-p recalibrated.

    Components (each computed for the observed split and for the same B random relabellings):

    * unbiased MMD^2 with Gaussian kernels ``exp(-|a - b|^2 / (s * median))`` for each scale ``s``
      (Schrab et al., JMLR 2023: aggregating bandwidths instead of betting on the median heuristic);
    * for each tail share q: how many current rows fall among the q most isolated rows of the pooled
      sample (k-nearest-neighbour distance), two-sided around its expectation. Text from another source
      lands where the reference has few neighbours: MMD's signal shrinks with the square of the mixed-in
      share, this count only linearly, which is what makes a 5 % mixture visible.

    Everything except the labels (bandwidths, neighbours, tail) is computed on the pooled sample, so
    it is the same for every relabelling and the permutation test stays exact. The kernels cost one
    ``K @ A`` product each, A holding all B + 1 labellings as columns.
    """
    rng = np.random.default_rng(seed)
    x, y = check_samples(current, reference)
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    if not gaussian_scales and not tail_shares:
        raise ValueError("aggregated_test needs at least one Gaussian scale or tail share")
    if max_samples is not None:
        x, y = subsample(x, max_samples, rng), subsample(y, max_samples, rng)
    n, m = len(x), len(y)
    total = n + m
    pooled = np.concatenate([x, y])
    d2 = _squared_distances(pooled)
    probe = np.sort(rng.choice(total, size=min(total, 1000), replace=False))  # median on <= 500k pairs
    bandwidth = median_bandwidth(d2[np.ix_(probe, probe)])
    labels = _labelings(n, total, permutations, rng)

    order = _isolation_order(d2, rng, neighbours) if tail_shares else np.arange(0)
    # The kernels overwrite the distances in place, widest first: exp(-d2 / (s b)) = exp(-d2 / (w b)) ** (w / s)
    # for a narrower scale s < w, so one N x N buffer serves every scale.
    by_scale: dict[float, np.ndarray] = {}
    kernel, previous = d2, None
    for scale in sorted(set(gaussian_scales), reverse=True):
        if previous is None:
            np.multiply(kernel, np.float32(-1.0 / (scale * bandwidth)), out=kernel)
            np.exp(kernel, out=kernel)
        else:
            _raise_to(kernel, previous / scale)
        np.fill_diagonal(kernel, 0.0)
        by_scale[scale] = _mmd2_columns(kernel, labels, n, m)
        previous = scale
    del kernel, d2
    names = [f"mmd2_gaussian_{scale:g}x_median" for scale in gaussian_scales]
    rows = [by_scale[scale] for scale in gaussian_scales]
    mmd2 = float(by_scale[1.0][0]) if 1.0 in by_scale else float("nan")
    for share in tail_shares:
        tail = np.zeros(total, dtype=np.float32)
        tail[order[: max(1, round(share * total))]] = 1.0
        expected = float(tail.sum()) * n / total
        names.append(f"isolated_{share:g}_knn{neighbours}")
        rows.append(np.abs(tail @ labels - expected).astype(np.float64))
    stats = np.vstack(rows)
    component_p, smallest, p_value = _min_p_calibration(stats)
    return AggregatedResult(
        statistic=float(-np.log10(smallest)),
        p_value=p_value,
        permutations=permutations,
        components=tuple(names),
        component_values=tuple(float(v) for v in stats[:, 0]),
        component_p_values=tuple(float(v) for v in component_p),
        mmd2=mmd2,
        bandwidth=bandwidth,
        n_current=n,
        n_reference=m,
    )


def two_sample_test(
    current: Any, reference: Any, *, seed: int = 0, permutations: int = 500, max_samples: int | None = 2000
) -> AggregatedResult:
    """Is ``current`` (rows = embeddings) drawn from the distribution of ``reference``? The drift alarm's test.

    Returns a frozen result with ``.p_value``, ``.statistic`` (-log10 of the smallest component p-value),
    ``.components`` and their values and p-values, ``.mmd2`` (median bandwidth), ``.n_current`` and
    ``.n_reference``. Permutation-calibrated (exact level at any size, see :func:`aggregated_test`);
    deterministic for a seed; windows above ``max_samples`` rows are sub-sampled. Raises ValueError for
    an empty sample, mismatched widths or non-finite values.
    """
    return aggregated_test(current, reference, permutations=permutations, seed=seed, max_samples=max_samples)
