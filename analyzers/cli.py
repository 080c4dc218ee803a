"""``llmpulse analyze NAME|all``: run analyzers on a window against a reference window and print the results.

Exit status: 0 when the run completed (also when alerts fired), 3 with ``--fail-on-alert`` when an
alert fired, 2 for bad input (unknown analyzer, duration, option, DSN), 1 when the store cannot be
opened. Bad input is rejected before the store is opened, so nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

EXIT_ALERT = 3


def register(verbs: Any) -> None:
    """Add the ``analyze`` verb; import nothing heavy here (numpy and friends load in the handler)."""
    parser = verbs.add_parser(
        "analyze",
        help="run analyzers (drift, operational, ...) on a time window against a reference window",
        description="Run an analyzer, or all of them, on the last --window of calls against the --reference "
        "window before it; write analysis_results and alerts rows and print them.",
    )
    from .framework import registry  # light: names only, analyzer modules load when run

    parser.add_argument("name", metavar="NAME", help=f"one of {', '.join(registry.names())}, or 'all'")
    parser.add_argument("--window", default="1h", help="current window length, e.g. 30m, 1h, 1d (default 1h)")
    parser.add_argument("--reference", default="7d", help="reference window just before it (default 7d)")
    parser.add_argument("--end", help="end of the current window, ISO 8601 with zone (default now)")
    parser.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    parser.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")
    parser.add_argument("--segment-by", help="comma-separated segment keys, e.g. service,model,prompt_version")
    parser.add_argument("--alpha", type=float, help="significance level of the tests (default 0.05)")
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an analyzer option (repeatable), e.g. -o permutations=1000",
    )
    parser.add_argument("--fail-on-alert", action="store_true", help=f"exit {EXIT_ALERT} when any alert fires")
    parser.add_argument("--no-write", action="store_true", help="print results without storing them")
    parser.set_defaults(handler=handle_analyze)


def parse_options(args: argparse.Namespace) -> dict[str, Any]:
    from .framework.errors import AnalyzerInputError
    from .framework.segments import parse_segment_by

    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AnalyzerInputError(f"bad --option {item!r}: use KEY=VALUE, e.g. -o permutations=1000")
        options[key.strip()] = value.strip()
    if args.segment_by is not None:
        options["segment_by"] = parse_segment_by(args.segment_by)
    if args.alpha is not None:
        if not 0 < args.alpha < 1:
            raise AnalyzerInputError(f"--alpha must be between 0 and 1, got {args.alpha}")
        options["alpha"] = args.alpha
    return options


def check_option_names(names: Sequence[str], options: dict[str, Any]) -> None:
    """Refuse option keys no chosen analyzer knows (a typo would otherwise be silently ignored)."""
    from .framework import registry
    from .framework.errors import AnalyzerInputError

    known: set[str] = set()
    for name in names:
        try:
            known.update(registry.defaults(name))
        except Exception:
            return  # the run will record that analyzer's import error; do not guess its options
    unknown = sorted(set(options) - known)
    if unknown:
        raise AnalyzerInputError(
            f"unknown option(s) {', '.join(unknown)} for {', '.join(names)}; known: {', '.join(sorted(known))}"
        )


def handle_analyze(args: argparse.Namespace) -> int:
    from .framework import registry
    from .framework.progress import progress
    from .framework.results import alerts_from
    from .framework.runner import run_analyzer
    from .framework.windows import parse_time, windows
    from .io.contract import open_store
    from .io.store import AnalysisStore

    names = registry.names() if args.name == "all" else [registry.check_name(args.name)]
    end = parse_time(args.end) if args.end else None
    window, reference = windows(args.window, args.reference, end=end)
    options = parse_options(args)
    check_option_names(names, options)
    client, database = open_store(args, apply_schema=not args.no_write)  # creates only missing tables
    try:
        store = AnalysisStore(client, database)
        results = []
        for name in progress(names, desc="analyzers"):
            results.extend(run_analyzer(name, store, window, reference, options, write=not args.no_write))
    finally:
        client.close()
    print(f"window {window}  reference {reference}")
    print(format_results(results))
    alerts = alerts_from(results)
    if alerts:
        print(f"\n{len(alerts)} alert(s):")
        for alert in alerts:
            print(f"  [{alert.severity}] {alert.title}: {alert.message}")
    else:
        print("\nno alerts")
    return EXIT_ALERT if alerts and args.fail_on_alert else 0


def format_results(results: Sequence[Any]) -> str:
    """A plain-text table of results, one line each."""
    from .framework.results import format_number

    header = ("analyzer", "segment", "metric", "value", "p", "thr", "status", "alert")
    rows = [
        (
            r.analyzer,
            ",".join(f"{k}={v}" for k, v in r.segment.items()) or "-",
            r.metric,
            format_number(r.value),
            format_number(r.p_value),
            format_number(r.threshold),
            r.status,
            "ALERT" if r.alert else "",
        )
        for r in results
    ]
    if not rows:
        return "no results"
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
