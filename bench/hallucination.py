"""Hallucination score on HaluEval QA: held-out ROC AUC and balanced accuracy, beside the length baseline.

Data: ../shared/data/halueval_qa_500.jsonl; each item gives two labelled answers to one context
(``right_answer`` = 0, ``hallucinated_answer`` = 1, ``knowledge`` = the context). Every figure is
out-of-fold: items are split into K folds (both answers of an item stay in one fold); for each fold
the combiner (analyzers/hallucination_model.fit_head, length-balanced weights) and its threshold are
fitted on the other folds and applied to this one. Nothing is reported on data it was fitted on.

Length is a trap in this set (right answers are short spans, hallucinated ones whole sentences), so
besides all pairs the table shows:

* matched pairs: the items whose two answers differ by at most ``--tolerance`` words;
* same-length AUC: all (right, hallucinated) pairs across items with exactly the same word count, i.e.
  the AUC within word-count strata, pooled (length-only scores 0.5 there by construction).

    python bench/hallucination.py [--folds 5] [--seed 0] [--tolerance 2] [--no-embeddings]
                                  [--write-model analyzers/hallucination_model.json]

``--write-model`` then refits on all 500 items and writes the model the analyzer ships with (its
figures are these out-of-fold ones, stored in the file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from llmpulse.analyzers.hallucination_model import (
    CONTEXT_FEATURES,
    PRIOR_HEADS,
    HallucinationModel,
    best_threshold,
    fit_head,
    length_strata,
)
from llmpulse.analyzers.hallucination_signals import CallContent, call_signals
from scipy.stats import bootstrap
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "halueval_qa_500.jsonl"
# Direction of each single signal: +1 when a higher value means "more likely hallucinated".
ORIENTATION = {
    "unsupported_token_share": 1,
    "rouge1_precision": -1,
    "rouge2_precision": -1,
    "rougeL_precision": -1,
    "unsupported_number_share": 1,
    "unsupported_entity_share": 1,
    "min_sentence_similarity": -1,
    "mean_sentence_similarity": -1,
}


def load(path: Path) -> tuple[list[CallContent], np.ndarray, np.ndarray, np.ndarray]:
    """Two calls per item; labels, items and word counts alongside."""
    calls, labels, items, words = [], [], [], []
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            row = json.loads(line)
            for answer, label in ((row["right_answer"], 0), (row["hallucinated_answer"], 1)):
                calls.append(CallContent(response=answer, context=row["knowledge"]))
                labels.append(label)
                items.append(index)
                words.append(len(answer.split()))
    return calls, np.array(labels), np.array(items), np.array(words)


def same_length_auc(labels: np.ndarray, scores: np.ndarray, words: np.ndarray) -> tuple[float, int]:
    """AUC over (negative, positive) pairs with equal word count: the per-stratum AUCs, pair-weighted."""
    concordant, pairs = 0.0, 0
    for count in np.unique(words):
        inside = words == count
        neg, pos = scores[inside & (labels == 0)], scores[inside & (labels == 1)]
        if len(neg) and len(pos):
            auc = roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos])
            concordant += auc * len(neg) * len(pos)
            pairs += len(neg) * len(pos)
    return (concordant / pairs if pairs else float("nan")), pairs


def auc_ci(labels: np.ndarray, scores: np.ndarray, seed: int) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the ROC AUC (answers resampled)."""

    def statistic(y: np.ndarray, s: np.ndarray) -> float:
        return roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan

    result = bootstrap(
        (labels, scores), statistic, paired=True, vectorized=False, n_resamples=1000, method="percentile", rng=seed
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def out_of_fold(
    x: np.ndarray, labels: np.ndarray, items: np.ndarray, words: np.ndarray, folds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out combined scores and verdicts, and held-out length-only verdicts, for every answer."""
    scores = np.zeros(len(labels))
    verdicts = np.zeros(len(labels), dtype=bool)
    length_verdicts = np.zeros(len(labels), dtype=bool)
    for train, test in GroupKFold(n_splits=folds).split(x, labels, items):
        head = fit_head("context", x[train], labels[train], CONTEXT_FEATURES, strata=length_strata(words[train]))
        scores[test] = head.scores(x[test])
        verdicts[test] = scores[test] >= head.threshold
        cut = best_threshold(words[train].astype(float), labels[train])
        length_verdicts[test] = words[test] >= cut
    return scores, verdicts, length_verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed for the confidence intervals")
    parser.add_argument("--tolerance", type=int, default=2, help="matched pairs: max word-count difference")
    parser.add_argument("--no-embeddings", action="store_true", help="leave out the sentence-similarity signals")
    parser.add_argument("--write-model", type=Path, help="refit on all items and write the model JSON here")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"data not found: {args.data} (expected ../shared/data beside the checkout)", file=sys.stderr)
        return 2

    calls, labels, items, words = load(args.data)
    encode = None
    if not args.no_embeddings:
        from llmpulse.analyzers.embeddings import Embedder

        encode = Embedder().encode
    started = time.perf_counter()
    signals = call_signals(calls, encode)
    elapsed = time.perf_counter() - started
    x = np.array([[s.get(f, np.nan) for f in CONTEXT_FEATURES] for s in signals])

    scores, verdicts, length_verdicts = out_of_fold(x, labels, items, words, args.folds)
    pair_gap = np.abs(words[labels == 0] - words[labels == 1])
    matched = np.isin(items, np.unique(items)[pair_gap <= args.tolerance])

    print(
        f"data={args.data.name} items={len(np.unique(items))} answers={len(labels)} folds={args.folds} (grouped by item)"
    )
    print(
        f"embeddings={'off' if encode is None else 'all-MiniLM-L6-v2'} tolerance={args.tolerance} words "
        f"matched_pairs={matched.sum() // 2} bootstrap_seed={args.seed} signals_time={elapsed:.1f}s "
        f"({1000 * elapsed / len(labels):.1f} ms/answer)"
    )
    print()
    header = f"{'score':34s} {'AUC all':>8s} {'BA all':>7s} {'AUC matched [95% CI]':>26s} {'BA matched':>10s} {'AUC same-length':>15s}"
    print(header)
    print("-" * len(header))

    def row(name: str, s: np.ndarray, v: np.ndarray | None) -> None:
        low, high = auc_ci(labels[matched], s[matched], args.seed)
        same, _pairs = same_length_auc(labels, s, words)
        ba_all = f"{balanced_accuracy_score(labels, v):.3f}" if v is not None else "-"
        ba_matched = f"{balanced_accuracy_score(labels[matched], v[matched]):.3f}" if v is not None else "-"
        matched_auc = f"{roc_auc_score(labels[matched], s[matched]):.3f} [{low:.3f}, {high:.3f}]"
        print(
            f"{name:34s} {roc_auc_score(labels, s):8.3f} {ba_all:>7s} {matched_auc:>26s} {ba_matched:>10s} {same:15.3f}"
        )

    row("length only (words) [baseline]", words.astype(float), length_verdicts)
    row("combined score (held out)", scores, verdicts)
    for index, name in enumerate(CONTEXT_FEATURES):
        column = x[:, index]
        if np.isfinite(column).all():
            row(f"  signal: {name}", ORIENTATION[name] * column, None)
    _pairs = same_length_auc(labels, scores, words)[1]
    print()
    print(f"same-length pairs compared: {_pairs}; BA = balanced accuracy at the threshold fitted on the other folds")

    if args.write_model:
        head = fit_head(
            "context",
            x,
            labels,
            CONTEXT_FEATURES,
            strata=length_strata(words),
            source=(
                f"fitted on {args.data.name} ({len(labels)} answers, length-balanced weights); "
                "figures are out-of-fold from bench/hallucination.py"
            ),
        )
        metrics = {
            "oof_auc_all": float(roc_auc_score(labels, scores)),
            "oof_auc_matched": float(roc_auc_score(labels[matched], scores[matched])),
            "oof_balanced_accuracy_all": float(balanced_accuracy_score(labels, verdicts)),
            "oof_balanced_accuracy_matched": float(balanced_accuracy_score(labels[matched], verdicts[matched])),
            "length_only_auc_all": float(roc_auc_score(labels, words)),
        }
        head = type(head)(**{**head.__dict__, "metrics": metrics})
        model = HallucinationModel({"context": head, **PRIOR_HEADS})
        args.write_model.write_text(model.to_json(), encoding="utf-8")
        print(f"wrote {args.write_model} (threshold {head.threshold:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
