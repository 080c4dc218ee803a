"""``llmpulse references`` (golden datasets) and ``llmpulse eval`` (run one through a function, score it).

    llmpulse references load golden.jsonl --dataset support-faq
    llmpulse references add-from-calls --dataset support-faq --min-score 1 --since 30d
    llmpulse references list
    llmpulse eval --dataset support-faq --target myapp.chat:answer --version v2 --baseline v1

``eval`` exits 0 when the run completed, 3 with ``--fail-on-regression`` when a metric regressed
against the baseline (a CI gate), 2 for bad input, 1 when the store cannot be opened.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_REGRESSION = 3


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    parser.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")


def register(verbs: Any) -> None:
    """Add the verbs; import nothing heavy here."""
    references = verbs.add_parser("references", help="load and list golden datasets (reference answers)")
    actions = references.add_subparsers(dest="references_verb", metavar="ACTION")
    actions.required = True
    load = actions.add_parser(
        "load",
        help="load a JSONL or CSV file of reference answers",
        description="Columns: reference (or expected/answer), item_id (or id), input (or question/prompt), "
        "context, dataset; other columns are kept as metadata. The whole file is checked first: a bad file "
        "stores nothing. Items with the same dataset and id are replaced.",
    )
    load.add_argument("file", metavar="FILE", help="a .jsonl or .csv file")
    load.add_argument("--dataset", help="dataset name for rows without a dataset column (default: the file name)")
    _store_args(load)
    load.set_defaults(handler=handle_load)
    from_calls = actions.add_parser(
        "add-from-calls",
        help="add well-rated answers of stored calls to a dataset as golden references",
        description="Each call whose mean human-feedback score is at least --min-score becomes an item: its "
        "prompt text as the input (the quality analyzer matches calls by it), its answer as the reference, its "
        "RAG context as the context. One item per prompt: the best-scored answer (then the latest). An item "
        "with the same input replaces the stored one.",
    )
    from_calls.add_argument("--dataset", required=True, help="the dataset to add to (created when new)")
    from llmpulse.analyzers.feedback.cli import add_selection_args

    add_selection_args(from_calls, min_help="score at which an answer becomes a reference (default 1)")
    from_calls.set_defaults(handler=handle_add_from_calls)
    listing = actions.add_parser("list", help="list the datasets and their sizes")
    _store_args(listing)
    listing.set_defaults(handler=handle_list)

    run = verbs.add_parser(
        "eval",
        help="run a golden dataset through a function and score it against the references",
        description="Call --target once per item of --dataset (inside llmpulse attributes, so its @observe spans "
        "carry the item id), score the outputs, store them, and compare with --baseline when given.",
    )
    run.add_argument("--dataset", required=True, help="the reference dataset to run")
    run.add_argument("--target", required=True, metavar="MODULE:FUNCTION", help="the function to evaluate")
    run.add_argument("--version", required=True, help="a name for this model/prompt version, e.g. v2")
    run.add_argument("--baseline", help="a version evaluated before on this dataset, to compare against")
    run.add_argument(
        "--metrics", default="rougeL,chrf,embedding", help="comma-separated (default rougeL,chrf,embedding)"
    )
    run.add_argument("--margin", type=float, default=0.02, help="smallest drop that counts as a regression (0.02)")
    run.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    run.add_argument("--no-embeddings", action="store_true", help="skip the embedding-similarity metric")
    run.add_argument("--fail-on-regression", action="store_true", help=f"exit {EXIT_REGRESSION} on a regression")
    _store_args(run)
    run.set_defaults(handler=handle_eval)


def handle_load(args: argparse.Namespace) -> int:
    from llmpulse.analyzers.io.contract import open_store
    from llmpulse.analyzers.io.references import store_items

    from .references import parse_file

    items = parse_file(args.file, args.dataset)  # checked before the store is opened: bad input writes nothing
    client, database = open_store(args)
    try:
        written = store_items(client, database, items, source=os.path.abspath(args.file))
    finally:
        client.close()
    datasets = sorted({i.dataset for i in items})
    print(f"loaded {written} reference item(s) into {', '.join(datasets)} from {args.file}")
    return 0


def handle_add_from_calls(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from llmpulse.analyzers.feedback.cli import EPOCH, EXIT_EMPTY, parse_since, why_no_rated_calls
    from llmpulse.analyzers.feedback.datasets import best_answers
    from llmpulse.analyzers.io.contract import open_store
    from llmpulse.analyzers.io.feedback import read_rated_calls
    from llmpulse.analyzers.io.references import ReferenceItem, store_items

    from .references import check_dataset_name, input_id

    dataset = check_dataset_name(args.dataset)  # bad options fail before the store opens
    since = parse_since(args.since) if args.since else EPOCH
    until = datetime.now(timezone.utc)
    client, database = open_store(args)
    try:
        calls = read_rated_calls(
            client, database, since=since, until=until, service=args.service, prompt_template=args.prompt_template
        )
        if not calls:
            print(f"no references added: {why_no_rated_calls(client, database, args, since, until)}", file=sys.stderr)
            return EXIT_EMPTY
        chosen = best_answers(calls, args.min_score)
        left_out = "; ".join(f"{n} {reason}" for reason, n in chosen.skipped.most_common())
        if not chosen.records:
            print(f"no references added: none of the {len(calls)} rated call(s) qualified: {left_out}", file=sys.stderr)
            return EXIT_EMPTY
        items = [
            ReferenceItem(
                dataset=dataset,
                item_id=input_id(call.prompt_text.strip()),
                reference=call.response_text,
                input=call.prompt_text.strip(),
                context=call.context,
                metadata={
                    "trace_id": call.trace_id,
                    "span_id": call.span_id,
                    "score": f"{call.score:g}",
                    "model": call.model,
                    "service": call.service,
                },
            )
            for call in chosen.records
        ]
        written = store_items(client, database, items, source="feedback")
    finally:
        client.close()
    print(f"added {written} reference item(s) to {dataset} from {len(calls)} rated call(s)")
    if left_out:
        print(f"left out: {left_out}")
    return 0


def handle_list(args: argparse.Namespace) -> int:
    from llmpulse.analyzers.io.contract import open_store
    from llmpulse.analyzers.io.references import dataset_sizes

    client, database = open_store(args)
    try:
        sizes = dataset_sizes(client, database)
    finally:
        client.close()
    if not sizes:
        print("no reference datasets; load one with `llmpulse references load FILE`")
    for dataset, count, loaded in sizes:
        print(f"{dataset}\t{count} item(s)\tlast loaded {loaded:%Y-%m-%d %H:%M:%S}")
    return 0


def handle_eval(args: argparse.Namespace) -> int:
    from llmpulse.analyzers.io.contract import open_store

    from .eval_run import resolve_target, run_eval
    from .metrics import parse_metrics

    metrics = parse_metrics(args.metrics)
    if args.no_embeddings:
        metrics = [m for m in metrics if m != "embedding"] or ["rougeL"]
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.margin < 0:
        raise ValueError(f"--margin must be 0 or more, got {args.margin}")
    target = resolve_target(args.target)
    client, database = open_store(args)
    configured_here = _configure_agent(args, database)
    try:
        encode = None
        if "embedding" in metrics:
            from llmpulse.analyzers.embeddings import Embedder
            from llmpulse.analyzers.io.store import AnalysisStore

            encode = Embedder(AnalysisStore(client, database)).encode
        report = run_eval(
            client,
            database,
            dataset=args.dataset,
            target=target,
            version=args.version,
            baseline=args.baseline,
            metrics=metrics,
            margin=args.margin,
            alpha=args.alpha,
            encode=encode,
        )
    finally:
        if configured_here:
            from llmpulse import agent

            agent.shutdown()
        client.close()
    print(f"eval of {args.version} on {args.dataset}: {len(report.outcomes)} item(s), {report.errors} error(s)")
    for metric, mean in report.means.items():
        print(f"  {metric:12s} mean {mean:.4f}")
    regressions = [r for r in report.results if r.alert]
    for result in report.results:
        if result.metric.endswith("_delta"):
            print(f"  {'REGRESSION ' if result.alert else ''}{result.summary}")
    return EXIT_REGRESSION if regressions and args.fail_on_regression else 0


def _configure_agent(args: argparse.Namespace, database: str) -> bool:
    """Send the target's spans to the same store unless the application configured llmpulse itself."""
    from llmpulse import agent

    if agent.is_configured():
        return False
    agent.configure(args.dsn or os.environ.get("LLMPULSE_DSN"), database=database)
    return True
