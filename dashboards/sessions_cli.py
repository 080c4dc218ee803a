"""``llmpulse sessions`` and ``llmpulse users``: the top sessions or users of a window, and one session's calls.

    llmpulse sessions --sort cost --window 7d --limit 20
    llmpulse sessions show SESSION_ID
    llmpulse users --sort feedback --service support-bot

Registration imports nothing heavy: the store client loads inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

MAX_LIMIT = 10_000


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def _store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    parser.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")
    parser.add_argument("--service", help="only this service (its service.name)")
    parser.add_argument(
        "--format", choices=("table", "jsonl"), default="table", help="a table to read or JSON lines (table)"
    )


def _listing_args(parser: argparse.ArgumentParser, kind: str) -> None:
    from .sessions import SORTS

    parser.add_argument(
        "--sort",
        choices=tuple(SORTS),
        default="cost",
        help="cost, errors, feedback (lowest mean score first), calls, tokens, latency (p95) or last-seen (cost)",
    )
    parser.add_argument("--limit", type=_limit, default=20, help=f"how many {kind}s to list (default 20)")
    parser.add_argument("--window", default="24h", help="time window up to now, e.g. 1h, 24h, 7d (default 24h)")
    _store_args(parser)


def register(verbs: Any) -> None:
    """Add ``sessions`` (with ``show``) and ``users``."""
    sessions = verbs.add_parser(
        "sessions",
        help="the top sessions of a window (cost, errors, feedback...) or one session's calls",
        description="Sessions are the session_id of the calls (attributes(session_id=...)). Figures come from the "
        "llm_sessions rollup; feedback is joined through the traces it names (negative: score <= 0).",
    )
    _listing_args(sessions, "session")
    sessions.set_defaults(handler=lambda args: _list(args, "session"))
    actions = sessions.add_subparsers(dest="sessions_verb", metavar="ACTION")
    show = actions.add_parser("show", help="the calls of one session, in order, with their feedback")
    show.add_argument("session_id", metavar="SESSION_ID")
    show.add_argument("--limit", type=_limit, default=500, help="at most this many calls (default 500)")
    _store_args(show)
    show.set_defaults(handler=_show)

    users = verbs.add_parser(
        "users",
        help="the top users of a window (cost, errors, feedback...)",
        description="Users are the user_id of the calls (attributes(user_id=...)), from the llm_users rollup.",
    )
    _listing_args(users, "user")
    users.set_defaults(handler=lambda args: _list(args, "user"))


def _open(args: argparse.Namespace) -> tuple[Any, str]:
    from .contract import open_store

    client, database, label = open_store(args)
    try:
        found = client.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name IN ('llm_sessions', 'llm_users')",
            parameters={"db": database},
        ).result_rows[0][0]
    except BaseException:
        client.close()
        raise
    if found < 2:
        client.close()
        raise ValueError(
            f"{label} has no session and user rollups (its schema predates them): run `llmpulse schema apply`"
        )
    return client, database


def _list(args: argparse.Namespace, kind: str) -> int:
    from .report import parse_window
    from .sessions import Window, list_rollup, why_empty

    window = Window.last(parse_window(args.window))  # a bad window is refused before the store is opened
    client, database = _open(args)
    try:
        rows = list_rollup(client, database, kind, window, sort=args.sort, limit=args.limit, service=args.service)
        reason = None if rows else why_empty(client, database, kind, window, args.service)
    finally:
        client.close()
    if reason:
        print(f"no {kind}s in the last {args.window}: {reason}", file=sys.stderr)
        return 0
    _print(rows, LISTING_COLUMNS[kind], args.format)
    return 0


def _show(args: argparse.Namespace) -> int:
    from .sessions import session_calls

    client, database = _open(args)
    try:
        calls = session_calls(client, database, args.session_id, service=args.service, limit=args.limit)
    finally:
        client.close()
    if not calls:
        scope = f" of service {args.service!r}" if args.service is not None else ""
        print(f"no session {args.session_id!r}{scope} in the store", file=sys.stderr)
        return 1
    if args.format == "table":
        first = calls[0]
        print(f"session {args.session_id} · service {first['service']} · user {first['user_id'] or '-'}")
    _print(calls, CALL_COLUMNS, args.format)
    return 0


Column = tuple[str, str, int, Callable[[Any], str]]


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _number(digits: int) -> Callable[[Any], str]:
    return lambda v: "-" if v is None or v != v else f"{v:.{digits}f}"


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else _text(value)


def _clip(width: int) -> Callable[[Any], str]:
    def clip(value: Any) -> str:
        text = " ".join(_text(value).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    return clip


_MEASURES: tuple[Column, ...] = (
    ("calls", "calls", 6, _text),
    ("errors", "errors", 6, _text),
    ("tokens", "tokens", 8, _text),
    ("cost_usd", "cost $", 10, _number(6)),
    ("mean_s", "mean s", 7, _number(2)),
    ("p95_s", "p95 s", 7, _number(2)),
    ("feedback", "fb", 4, _text),
    ("mean_score", "score", 6, _number(2)),
    ("negative", "neg", 4, _text),
    ("last_seen", "last seen (UTC)", 19, _time),
)
LISTING_COLUMNS: dict[str, tuple[Column, ...]] = {
    "session": (
        ("id", "session", 24, _clip(24)),
        ("service", "service", 16, _clip(16)),
        ("user_id", "user", 14, _clip(14)),
        *_MEASURES,
    ),
    "user": (
        ("id", "user", 24, _clip(24)),
        ("service", "service", 16, _clip(16)),
        ("sessions", "sessions", 8, _text),
        *_MEASURES,
    ),
}
CALL_COLUMNS: tuple[Column, ...] = (
    ("time", "time (UTC)", 19, _time),
    ("model", "model", 22, _clip(22)),
    ("status", "status", 6, _text),
    ("duration_s", "dur s", 6, _number(2)),
    ("output_tokens", "out tok", 7, _text),
    ("cost_usd", "cost $", 10, _number(6)),
    ("score", "score", 5, _number(2)),
    ("prompt", "prompt", 40, _clip(40)),
    ("response", "response", 40, _clip(40)),
)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as a fixed-width table: text columns left-aligned, numbers right-aligned."""
    lines = [" ".join(f"{title:<{width}}" for _key, title, width, _show in columns).rstrip()]
    for row in rows:
        cells = []
        for key, _title, width, show in columns:
            text = show(row.get(key))
            numeric = isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
            cells.append(f"{text:>{width}}" if numeric else f"{text:<{width}}")
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def _print(rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: str) -> None:
    if fmt == "jsonl":
        for row in rows:
            print(json.dumps(row, default=_json_value, ensure_ascii=False))
        return
    print(format_table(rows, columns))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
