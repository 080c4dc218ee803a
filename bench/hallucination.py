"""Hallucination scorer, leave-one-domain-out: fit on two dev domains, score the third, for each.

Data (../shared/data, see its README): HaluEval QA-500 (1,000 answers, synthetic), BEGIN WoW (dev +
test, 4,031 labelled responses of real dialogue models) and BEGIN CMU-DoG (dev, 337; "Generic" left
out). For each held-out domain the context head (analyzers/hallucination/fit.py: sign-constrained
logistic regression, domains weighted equally) and its threshold are fitted on the other two; the
held-out domain is only scored. Features and the ridge penalty are fixed a priori (no selection).

Printed per held-out domain: ROC AUC with a 95 % bootstrap interval and balanced accuracy (threshold
from the training domains, carried over), beside the length-only and 1 - ROUGE-2-precision baselines
(their thresholds also from the training domains); with and without the embedding signals, and what the
embedding signals add (paired bootstrap interval of the AUC difference), also with the signal the model
leaves out (``worst_embedding_unsupported``); HaluEval
on length-matched pairs and BEGIN on its attributable-but-abstractive responses; the worst domain.

    python bench/hallucination.py [--limit N] [--seed 0] [--cache /tmp/hallucination_emb.npz]
                                  [--write-model analyzers/hallucination/hallucination_model.json]

``--write-model`` refits both context heads on all three domains and writes the shipped model.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from llmpulse.analyzers.hallucination.fit import (
    Domain,
    domain_weights,
    fit_context_head,
    load_domains,
    weighted_threshold,
)
from llmpulse.analyzers.hallucination.grounding import grounding_signals_many, rouge_precisions
from llmpulse.analyzers.hallucination.model import (
    CONTEXT_FEATURES,
    LEXICAL_FEATURES,
    PRIOR_HEADS,
    HallucinationModel,
    LogisticHead,
)
from scipy.stats import bootstrap
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL_VERSION = "2.1-lodo-nonneg"
DROPPED = ("worst_embedding_unsupported",)  # computed, not a model feature (model.py says why); shown for comparison
SIGNALS = CONTEXT_FEATURES + DROPPED
VARIANTS = (  # (key, row name, features): each fitted on the training domains of every fold
    ("lexical", "scorer, lexical only", LEXICAL_FEATURES),
    ("all", "scorer, lexical + embedding", CONTEXT_FEATURES),
    ("dropped", "  + worst_embedding (not shipped)", CONTEXT_FEATURES + DROPPED),
)
L2 = 1e-2  # fixed a priori, not tuned


def _paired_bootstrap_ci(
    statistic: Callable[..., float], samples: tuple[np.ndarray, ...], seed: int
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``statistic(*samples)``, the responses resampled together."""
    result = bootstrap(
        samples, statistic, paired=True, vectorized=False, n_resamples=1000, method="percentile", rng=seed
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def auc_ci(labels: np.ndarray, scores: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % bootstrap interval of the ROC AUC."""

    def statistic(y: np.ndarray, s: np.ndarray) -> float:
        return roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan

    return _paired_bootstrap_ci(statistic, (labels, scores), seed)


def auc_gain_ci(labels: np.ndarray, with_: np.ndarray, without: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % bootstrap interval of ROC AUC(with_) - ROC AUC(without): the same resampled responses for both."""

    def statistic(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return roc_auc_score(y, a) - roc_auc_score(y, b) if 0 < y.sum() < len(y) else np.nan

    return _paired_bootstrap_ci(statistic, (labels, with_, without), seed)


def signals_of(domains: dict[str, Domain], encode: object) -> dict[str, np.ndarray]:
    out = {}
    for name, domain in domains.items():
        started = time.perf_counter()
        found = grounding_signals_many([(r, c) for c, r in domain.pairs], encode)  # type: ignore[arg-type]
        out[name] = np.array([[g.as_dict()[f] for f in SIGNALS] for g in found])
        took = time.perf_counter() - started
        print(f"  signals {name}: {len(found)} responses, {took:.1f}s ({1000 * took / len(found):.1f} ms each)")
    return out


def fit_on(
    names: list[str], domains: dict[str, Domain], x: dict[str, np.ndarray], features: tuple[str, ...]
) -> LogisticHead:
    columns = [SIGNALS.index(f) for f in features]
    stacked = np.vstack([x[n][:, columns] for n in names])
    labels = np.concatenate([domains[n].labels for n in names])
    tags = np.concatenate([[n] * len(domains[n].labels) for n in names])
    return fit_context_head(stacked, labels, tags, features, l2=L2)


def baseline_verdicts(values: dict[str, np.ndarray], domains: dict[str, Domain], held: str) -> np.ndarray:
    """A one-number baseline cut at the threshold that is best on the training domains."""
    train = [n for n in domains if n != held]
    v = np.concatenate([values[n] for n in train])
    y = np.concatenate([domains[n].labels for n in train])
    cut = weighted_threshold(v, y, domain_weights(np.concatenate([[n] * len(domains[n].labels) for n in train]), y))
    return values[held] >= cut


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, help="a seeded sample of this many passages/dialogues per domain")
    parser.add_argument("--seed", type=int, default=0, help="sample and bootstrap seed")
    parser.add_argument("--cache", type=Path, help="embedding cache (.npz), loaded if present and saved")
    parser.add_argument("--write-model", type=Path, help="refit on all three domains and write the model JSON here")
    args = parser.parse_args()
    domains = load_domains(args.data, args.limit, args.seed)
    if len(domains) < 3:
        print(f"dev data not found in {args.data} (expected ../shared/data beside the checkout)", file=sys.stderr)
        return 2

    from llmpulse.analyzers.embeddings import Embedder, MemoryEmbeddingCache

    cache = MemoryEmbeddingCache.load(args.cache) if args.cache and args.cache.exists() else MemoryEmbeddingCache()
    print(f"data={args.data} limit={args.limit} seed={args.seed} l2={L2} embeddings=all-MiniLM-L6-v2")
    x = signals_of(domains, Embedder(cache).encode)
    if args.cache:
        cache.save(args.cache)
    words = {n: np.array([len(r.split()) for _, r in d.pairs], dtype=float) for n, d in domains.items()}
    rouge2 = {n: np.array([1.0 - rouge_precisions(r, c)["rouge2"] for c, r in d.pairs]) for n, d in domains.items()}

    print()
    header = f"{'held-out domain':14s} {'n':>5s} {'score':32s} {'ROC AUC [95% CI]':>24s} {'BA':>6s}"
    print(header)
    print("-" * len(header))
    summary: dict[str, dict[str, float]] = {label: {} for label, _, _ in VARIANTS}
    extras = []
    for held, domain in domains.items():
        y = domain.labels
        train = [n for n in domains if n != held]
        kept: dict[str, np.ndarray] = {}
        rows = [
            ("length only (words) [baseline]", words[held], baseline_verdicts(words, domains, held)),
            ("1 - ROUGE-2 precision [baseline]", rouge2[held], baseline_verdicts(rouge2, domains, held)),
        ]
        for label, name, features in VARIANTS:
            head = fit_on(train, domains, x, features)
            scores = head.scores(x[held][:, [SIGNALS.index(f) for f in features]])
            rows.append((name, scores, scores >= head.threshold))
            summary[label][held] = roc_auc_score(y, scores)
            kept[label] = scores
        for name, s, verdict in rows:
            low, high = auc_ci(y, s, args.seed)
            auc = f"{roc_auc_score(y, s):.3f} [{low:.3f}, {high:.3f}]"
            print(f"{held:14s} {len(y):5d} {name:32s} {auc:>24s} {balanced_accuracy_score(y, verdict):6.3f}")
        for label, said in (("all", "embedding signals add"), ("dropped", "with worst_embedding_unsupported too adds")):
            gain = roc_auc_score(y, kept[label]) - roc_auc_score(y, kept["lexical"])
            low, high = auc_gain_ci(y, kept[label], kept["lexical"], args.seed)
            extras.append(f"{held} {said} {gain:+.4f} ROC AUC [95% paired bootstrap {low:+.4f}, {high:+.4f}]")
        if held == "halueval_qa":
            gap = {g: [] for g in np.unique(domain.groups)}
            for g, w in zip(domain.groups, words[held], strict=True):
                gap[g].append(w)
            matched = np.array([abs(gap[g][0] - gap[g][-1]) <= 2 for g in domain.groups])
            extras.append(
                f"halueval_qa length-matched pairs (|word gap| <= 2, {matched.sum() // 2} pairs): scorer AUC "
                f"{roc_auc_score(y[matched], kept['all'][matched]):.3f} (lexical only "
                f"{roc_auc_score(y[matched], kept['lexical'][matched]):.3f}), length-only {roc_auc_score(y[matched], words[held][matched]):.3f}"
            )
        else:
            abstractive = (y == 1) | (rouge2[held] > 0.5)
            extras.append(
                f"{held} attributable-but-abstractive (ROUGE-2 precision < 0.5, {int(((y == 0) & abstractive).sum())}) "
                f"vs all unattributable: scorer AUC {roc_auc_score(y[abstractive], kept['all'][abstractive]):.3f} "
                f"(lexical only {roc_auc_score(y[abstractive], kept['lexical'][abstractive]):.3f}), "
                f"1 - ROUGE-2 {roc_auc_score(y[abstractive], rouge2[held][abstractive]):.3f}"
            )
        print()
    for line in extras:
        print(line)
    for label, figures in summary.items():
        worst = min(figures, key=figures.get)  # type: ignore[arg-type]
        shown = ", ".join(f"{n} {v:.3f}" for n, v in figures.items())
        print(f"LODO ROC AUC {label:8s}: {shown}; worst domain {worst} ({figures[worst]:.3f})")
    print("BA = balanced accuracy at the threshold chosen on the two training domains, carried over unchanged")

    if args.write_model:
        names = list(domains)
        source = f"fitted on {', '.join(names)} (domains weighted equally, weights >= 0); LODO figures from bench/hallucination.py"
        heads = {}
        for key, features in (("context", CONTEXT_FEATURES), ("context_lexical", LEXICAL_FEATURES)):
            head = fit_on(names, domains, x, features)
            label = "all" if key == "context" else "lexical"
            metrics = {f"lodo_auc_{n}": float(v) for n, v in summary[label].items()}
            heads[key] = LogisticHead(**{**head.__dict__, "name": key, "source": source, "metrics": metrics})
        model = HallucinationModel({**heads, **PRIOR_HEADS}, version=MODEL_VERSION, training_domains=tuple(names))
        args.write_model.write_text(model.to_json(), encoding="utf-8")
        coefficients = {f: round(c, 3) for f, c in zip(CONTEXT_FEATURES, heads["context"].coefficients, strict=True)}
        print(f"wrote {args.write_model}: coefficients {coefficients}, threshold {heads['context'].threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
