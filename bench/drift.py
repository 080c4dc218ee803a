"""Calibration, power and cost of the embedding-drift tests on real public text.

Texts (../shared/data, HaluEval, MIT licence):

* the pool of "ordinary traffic": the distinct ``user_query`` texts of halueval_general.jsonl (real
  user queries to ChatGPT on everyday topics);
* the shifted texts: the ``question`` texts of halueval_qa_500.jsonl (multi-hop Wikipedia trivia
  questions; a subtle shift, they are questions too) and, as a second kind, its ``knowledge`` passages.

Every text is embedded once with the offline all-MiniLM-L6-v2 (vectors cached in an .npz under /tmp),
then, with fixed seeds, at 100, 500 and 1,000 texts per window:

* false-positive rate: reference and current windows drawn without overlap from the ordinary pool
  (no drift; every alarm is false), ``--null-splits`` times (``--null-splits-1000`` at 1,000);
* power: 5 % and 10 % of the current window are QA questions (another source), the rest ordinary;
  at 500 also 20 % / 50 % questions and 10 % / 20 % knowledge passages;
* seconds per test, embedding excluded, on one core (BLAS threads pinned to 1 unless set): the mean
  over the cell's splits, and the best of 10 runs of one 1,000 vs 1,000 test.

Reported for the drift alarm ``two_sample_test`` (aggregated MMD + isolated-text counts, one
permutation test), the previous single-bandwidth MMD permutation test, and the cross-fitted classifier.
Rates come with 95 % Clopper-Pearson intervals.

    python bench/drift.py [--null-splits 200] [--null-splits-1000 100] [--power-splits 100] [--permutations 500]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # "on one core", before numpy loads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from llmpulse.analyzers.drift import two_sample_test  # noqa: E402
from llmpulse.analyzers.drift.two_sample import classifier_test, mmd_permutation_test  # noqa: E402
from llmpulse.analyzers.embeddings import Embedder, MemoryEmbeddingCache  # noqa: E402
from scipy.stats import binomtest  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CACHE = Path("/tmp/llmpulse_bench_drift_embeddings.npz")


def read_jsonl(path: Path, field: str) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        texts = [json.loads(line)[field].strip() for line in handle if line.strip()]
    return list(dict.fromkeys(t for t in texts if t))  # distinct, non-empty, in file order


def embed_all(texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    cache = MemoryEmbeddingCache.load(CACHE) if CACHE.exists() else MemoryEmbeddingCache()
    embedder = Embedder(cache)
    if not CACHE.exists():  # the bundled model's load time, apart from the encoding below
        loading = time.perf_counter()
        embedder.model  # noqa: B018
        print(f"embedding model loaded in {time.perf_counter() - loading:.1f} s")
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
) -> tuple[dict[str, int], dict[str, float]]:
    """Rejections per test over ``splits`` seeded splits, and the mean seconds per test."""
    rng = np.random.default_rng(seed)
    counts = {"new": 0, "mmd": 0, "classifier": 0}
    seconds = {"new": 0.0, "mmd": 0.0, "classifier": 0.0}
    for i in range(splits):
        current, reference = one_split(pool, shifted, share, n, rng)
        test_seed = seed * 100_003 + i
        runs = {
            "new": partial(two_sample_test, current, reference, permutations=permutations, seed=test_seed),
            "mmd": partial(mmd_permutation_test, current, reference, permutations=permutations, seed=test_seed),
            "classifier": partial(classifier_test, current, reference, seed=test_seed),
        }
        for name, run in runs.items():
            started = time.perf_counter()
            p_value = run().p_value
            seconds[name] += time.perf_counter() - started
            counts[name] += p_value < alpha
    return counts, {name: total / splits for name, total in seconds.items()}


def rate(k: int, n: int) -> str:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k / n:.3f} [{ci.low:.2f},{ci.high:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--null-splits", type=int, default=200, help="no-drift splits at 100 and 500 (default 200)")
    parser.add_argument("--null-splits-1000", type=int, default=100, help="no-drift splits at 1000 (default 100)")
    parser.add_argument("--power-splits", type=int, default=100, help="splits per shifted scenario (default 100)")
    parser.add_argument("--permutations", type=int, default=500, help="permutations per test (default 500)")
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
        f"settings: alpha {args.alpha}, {args.permutations} permutations per test; new = two_sample_test "
        f"(MMD^2 Gaussian 1x/4x median + isolated-text counts, min-p), old = MMD^2 RBF median heuristic; "
        f"classifier: logistic regression, 2-fold cross-fitting; seed {args.seed}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPUs"
    )

    questions, knowledge = vectors["qa_questions"], vectors["qa_knowledge"]
    scenarios: list[tuple[str, np.ndarray | None, float, int, int]] = []
    for n in (100, 500, 1000):
        scenarios.append(("no drift", None, 0.0, n, args.null_splits if n < 1000 else args.null_splits_1000))
        for share in (0.05, 0.1):
            scenarios.append(("qa questions", questions, share, n, args.power_splits))
    for share in (0.2, 0.5):
        scenarios.append(("qa questions", questions, share, 500, args.power_splits))
    for share in (0.1, 0.2):
        scenarios.append(("qa knowledge", knowledge, share, 500, args.power_splits))

    header = (
        f"{'current window':<22}{'n vs n':>12}{'splits':>7}  {'new test':<20}{'old MMD':<20}{'classifier':<20}"
        f"{'s/test new':>11}{'old':>7}{'clf':>7}"
    )
    print()
    print("rejection rate at alpha (false-positive rate when no drift, power otherwise), 95% CI")
    print(header)
    print("-" * len(header))
    for index, (name, shifted, share, n, splits) in enumerate(scenarios):
        counts, seconds = rejection_rates(
            pool, shifted, share, n, splits, args.permutations, args.alpha, args.seed + index
        )
        label = name if shifted is None else f"{share:.0%} {name}"
        print(
            f"{label:<22}{f'{n} vs {n}':>12}{splits:>7}  {rate(counts['new'], splits):<20}"
            f"{rate(counts['mmd'], splits):<20}{rate(counts['classifier'], splits):<20}"
            f"{seconds['new']:>11.3f}{seconds['mmd']:>7.3f}{seconds['classifier']:>7.3f}",
            flush=True,
        )
    current, reference = one_split(pool, None, 0.0, 1000, np.random.default_rng(args.seed))
    best = {}
    for name, test in (("new", two_sample_test), ("old MMD", mmd_permutation_test)):
        times = []
        for repeat in range(10):
            started = time.perf_counter()
            test(current, reference, permutations=args.permutations, seed=repeat)
            times.append(time.perf_counter() - started)
        best[name] = f"{min(times):.3f} s (median {np.median(times):.3f})"
    print()
    print(
        "one 1000 vs 1000 test, embedding excluded, best of 10 (the table's means include other load): "
        + ", ".join(f"{name} {value}" for name, value in best.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
