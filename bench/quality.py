"""Quality regression: a seeded regression between two versions is detected; two samples of one version are not.

Data: the ``right_answer`` of ../shared/data/halueval_qa_500.jsonl are the reference answers. A
"version" answers each item; its outputs are generated, seeded, from real text:

* version A: the right answer, lightly rephrased at random ("X", "X.", "The answer is X.", "It is X.",
  lower-cased first letter) -- two independent samples of A differ item by item, as two runs of one
  model at temperature > 0 do;
* version B: like A, but a share ``--rates`` of the items answered with HaluEval's hallucinated answer
  (fluent, plausible, wrong: a realistic degradation).

Each trial draws ``--items`` items and compares A with a second sample of A (every alert is a false
alarm) and A with B at each rate, with the analyzer's rule: per metric a paired bootstrap CI and a
Wilcoxon signed-rank p-value, Benjamini-Hochberg across the metrics, and an alert only when the
adjusted p < alpha, the CI is below zero and the mean drop exceeds ``--margin``.

    python bench/quality.py [--trials 100] [--items 200] [--rates 0.1,0.2,0.3] [--margin 0.02] [--embeddings]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from llmpulse.analyzers.framework.statistics import benjamini_hochberg
from llmpulse.analyzers.quality.comparison import compare_items
from llmpulse.analyzers.quality.metrics import score_pairs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "halueval_qa_500.jsonl"
TEMPLATES = ("{}", "{}.", "The answer is {}.", "It is {}.", "{}, according to the sources.")


def rephrase(answer: str, rng: np.random.Generator) -> str:
    text = TEMPLATES[rng.integers(len(TEMPLATES))].format(answer.rstrip("."))
    if rng.random() < 0.3:
        text = text[:1].lower() + text[1:]
    return text


def version_outputs(rows: list[dict], items: np.ndarray, rate: float, rng: np.random.Generator) -> list[str]:
    """One sample of a version: rephrased right answers, a share ``rate`` replaced by the hallucinated answer."""
    wrong = rng.random(len(items)) < rate
    return [
        rephrase(rows[i]["hallucinated_answer"] if bad else rows[i]["right_answer"], rng)
        for i, bad in zip(items, wrong, strict=True)
    ]


def alerts(
    references: list[str],
    baseline: list[str],
    candidate: list[str],
    metrics: list[str],
    encode,
    args: argparse.Namespace,
    seed: int,
):
    """(alert fired, comparisons) for one candidate against one baseline, with the analyzer's rule."""
    keys = [str(k) for k in range(len(references))]

    def per_item(outputs: list[str]) -> dict[str, dict[str, float]]:
        scores = score_pairs(outputs, references, encode)
        return {k: {m: float(scores[m][j]) for m in metrics} for j, k in enumerate(keys)}

    comparisons = compare_items(
        per_item(baseline), per_item(candidate), metrics, margin=args.margin, n_resamples=args.resamples, seed=seed
    )
    tested = [c for c in comparisons.values() if c is not None]
    adjusted = benjamini_hochberg([c.p_value for c in tested])
    fired = any(p < args.alpha and c.regression for c, p in zip(tested, adjusted, strict=True))
    return fired, comparisons


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--rates", default="0.1,0.2,0.3", help="shares of degraded items in version B")
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--metrics", default="rougeL,chrf,exact_match")
    parser.add_argument("--embeddings", action="store_true", help="add the embedding-similarity metric")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"data not found: {args.data} (expected ../shared/data beside the checkout)", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()]
    rates = [float(r) for r in args.rates.split(",")]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    encode = None
    if args.embeddings:
        from llmpulse.analyzers.embeddings import Embedder, MemoryEmbeddingCache

        encode = Embedder(MemoryEmbeddingCache()).encode
        metrics.append("embedding")

    started = time.perf_counter()
    false_alarms = 0
    detected = dict.fromkeys(rates, 0)
    example = None
    for trial in range(args.trials):
        rng = np.random.default_rng(args.seed * 100_003 + trial)
        items = rng.choice(len(rows), size=args.items, replace=False)
        references = [rows[i]["right_answer"] for i in items]
        version_a = version_outputs(rows, items, 0.0, rng)
        fired, _ = alerts(references, version_a, version_outputs(rows, items, 0.0, rng), metrics, encode, args, trial)
        false_alarms += fired
        for rate in rates:
            fired, comparisons = alerts(
                references, version_a, version_outputs(rows, items, rate, rng), metrics, encode, args, trial
            )
            detected[rate] += fired
            if trial == 0 and rate == rates[len(rates) // 2]:
                example = (rate, comparisons)
    elapsed = time.perf_counter() - started

    print(
        f"data={args.data.name} trials={args.trials} items_per_trial={args.items} metrics={','.join(metrics)} "
        f"margin={args.margin} alpha={args.alpha} resamples={args.resamples} seed={args.seed} time={elapsed:.1f}s"
    )
    print()
    header = f"{'comparison':40s} {'alert rate':>12s}"
    print(header)
    print("-" * len(header))
    print(f"{'A vs A (same version, false alarms)':40s} {false_alarms / args.trials:12.3f}")
    for rate in rates:
        print(f"{f'A vs B ({rate:.0%} of answers hallucinated)':40s} {detected[rate] / args.trials:12.3f}")
    if example:
        rate, comparisons = example
        print()
        print(f"trial 0, A vs B at {rate:.0%}:")
        for metric, c in comparisons.items():
            if c is not None:
                print(
                    f"  {metric:12s} A {c.baseline_mean:.3f}  B {c.candidate_mean:.3f}  change {c.mean_delta:+.3f} "
                    f"95% CI [{c.ci_low:+.3f}, {c.ci_high:+.3f}]  Wilcoxon p {c.p_value:.2g}  regression {c.regression}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
