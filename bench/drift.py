"""Calibration, power and cost of the embedding-drift tests on real public text.

Texts (../shared/data, HaluEval, MIT licence):

* the pool of "ordinary traffic": the distinct ``user_query`` texts of halueval_general.jsonl (real
  user queries to ChatGPT on everyday topics);
* the shifted texts: the ``question`` texts of halueval_qa_500.jsonl (multi-hop Wikipedia trivia
  questions; a subtle shift, they are questions too) and, as a second kind, its ``knowledge`` passages.

Every text is embedded once with the offline all-MiniLM-L6-v2 (vectors cached in an .npz under /tmp),
then, with fixed seeds:

* false-positive rate: reference and current windows drawn without overlap from the ordinary pool
  (no drift; every alarm is false), ``--null-splits`` times, at 500 vs 500 and 100 vs 100;
* power: the current window has a share (10 %, 20 %, 50 %) of shifted texts, the rest ordinary;
* time of one 2,000 vs 2,000 test (MMD with the permutations used, and the classifier), embedding excluded.

Reported for the MMD permutation test (the alarm), the cross-fitted classifier test, and "both"
(an alarm only when both are significant). Rates come with 95 % Clopper-Pearson intervals.

    python bench/drift.py [--null-splits 200] [--power-splits 100] [--permutations 500] [--n 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from llmpulse.analyzers.embeddings import Embedder, MemoryEmbeddingCache
from llmpulse.analyzers.two_sample import classifier_test, mmd_permutation_test
from scipy.stats import binomtest

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CACHE = Path("/tmp/llmpulse_bench_drift_embeddings.npz")


def read_jsonl(path: Path, field: str) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        texts = [json.loads(line)[field].strip() for line in handle if line.strip()]
    return list(dict.fromkeys(t for t in texts if t))  # distinct, non-empty, in file order


def embed_all(texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    cache = MemoryEmbeddingCache.load(CACHE) if CACHE.exists() else MemoryEmbeddingCache()
    embedder = Embedder(cache)
    started = time.perf_counter()
    vectors = {name: embedder.encode(items) for name, items in texts.items()}
    if embedder.encoded:
        seconds = time.perf_counter() - started
        print(f"embedded {embedder.encoded} texts in {seconds:.1f} s ({embedder.encoded / seconds:.0f} texts/s)")
        cache.save(CACHE)
    else:
        print(f"embeddings read from {CACHE}")
    return vectors


def one_split(
    pool: np.ndarray, shifted: np.ndarray | None, share: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: n ordinary texts; current: n texts of which round(share * n) shifted; no text on both sides."""
    n_shift = round(share * n) if shifted is not None else 0
    chosen = rng.choice(len(pool), size=2 * n - n_shift, replace=False)
    reference = pool[chosen[:n]]
    current = pool[chosen[n:]]
    if n_shift:
        current = np.concatenate([current, shifted[rng.choice(len(shifted), size=n_shift, replace=False)]])
    return current, reference


def rejection_rates(
    pool: np.ndarray,
    shifted: np.ndarray | None,
    share: float,
    n: int,
    splits: int,
    permutations: int,
    alpha: float,
    seed: int,
) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts = {"mmd": 0, "classifier": 0, "both": 0}
    for i in range(splits):
        current, reference = one_split(pool, shifted, share, n, rng)
        mmd = mmd_permutation_test(current, reference, permutations=permutations, seed=seed * 100_003 + i)
        clf = classifier_test(current, reference, seed=seed * 100_003 + i)
        counts["mmd"] += mmd.p_value < alpha
        counts["classifier"] += clf.p_value < alpha
        counts["both"] += mmd.p_value < alpha and clf.p_value < alpha
    return counts


def rate(k: int, n: int) -> str:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k / n:.3f} [{ci.low:.2f},{ci.high:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--null-splits", type=int, default=200, help="no-drift splits per size (default 200)")
    parser.add_argument("--power-splits", type=int, default=100, help="splits per shifted scenario (default 100)")
    parser.add_argument("--permutations", type=int, default=500, help="MMD permutations per test (default 500)")
    parser.add_argument("--n", type=int, default=500, help="texts per window (default 500)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the shared data folder {DATA} (see shared/data/README.md)", file=sys.stderr)
        return 2

    texts = {
        "general": read_jsonl(DATA / "halueval_general.jsonl", "user_query"),
        "qa_questions": read_jsonl(DATA / "halueval_qa_500.jsonl", "question"),
        "qa_knowledge": read_jsonl(DATA / "halueval_qa_500.jsonl", "knowledge"),
    }
    print("texts: " + ", ".join(f"{k} {len(v)}" for k, v in texts.items()))
    vectors = embed_all(texts)
    pool = vectors["general"]
    print(
        f"settings: alpha {args.alpha}, MMD permutations {args.permutations} (RBF, median heuristic), "
        f"classifier: logistic regression, 2-fold cross-fitting + Mann-Whitney, Bonferroni; seed {args.seed}; "
        f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs"
    )

    scenarios: list[tuple[str, np.ndarray | None, float, int, int]] = [
        ("no drift", None, 0.0, args.n, args.null_splits),
        ("no drift", None, 0.0, 100, args.null_splits),
    ]
    for share in (0.1, 0.2, 0.5):
        scenarios.append(("qa questions", vectors["qa_questions"], share, args.n, args.power_splits))
    for share in (0.1, 0.2):
        scenarios.append(("qa knowledge", vectors["qa_knowledge"], share, args.n, args.power_splits))

    header = (
        f"{'current window':<28}{'n vs n':>11}{'splits':>8}  {'MMD':<20}{'classifier':<20}{'both':<20}{'s/split':>8}"
    )
    print()
    print("rejection rate at alpha (false-positive rate when no drift, power otherwise), 95% CI")
    print(header)
    print("-" * len(header))
    for index, (name, shifted, share, n, splits) in enumerate(scenarios):
        started = time.perf_counter()
        counts = rejection_rates(pool, shifted, share, n, splits, args.permutations, args.alpha, args.seed + index)
        seconds = (time.perf_counter() - started) / splits
        label = name if shifted is None else f"{share:.0%} {name}"
        print(
            f"{label:<28}{f'{n} vs {n}':>11}{splits:>8}  {rate(counts['mmd'], splits):<20}"
            f"{rate(counts['classifier'], splits):<20}{rate(counts['both'], splits):<20}{seconds:>8.2f}",
            flush=True,
        )

    rng = np.random.default_rng(args.seed)
    current, reference = one_split(pool, None, 0.0, 2000, rng)
    started = time.perf_counter()
    mmd = mmd_permutation_test(current, reference, permutations=args.permutations, seed=args.seed)
    mmd_seconds = time.perf_counter() - started
    started = time.perf_counter()
    classifier_test(current, reference, seed=args.seed)
    clf_seconds = time.perf_counter() - started
    print()
    print(
        f"one 2000 vs 2000 test, embedding excluded: MMD {mmd_seconds:.2f} s ({mmd.permutations} permutations), "
        f"classifier {clf_seconds:.2f} s, total {mmd_seconds + clf_seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
