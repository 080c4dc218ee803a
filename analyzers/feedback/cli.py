"""``llmpulse export feedback``: the calls with human feedback as fine-tuning data.

    llmpulse export feedback --format sft --min-score 1 --since 30d --out sft.jsonl
    llmpulse export feedback --format dpo --service support-bot --out pairs.jsonl
    llmpulse export feedback --format jsonl --prompt-template answer --out rated.jsonl

Exit 0 when records were written; 4 when nothing matched (the reason is printed, FILE is left as it
was); 2 for bad options; 1 when the store cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

EXIT_EMPTY = 4
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAMES = {"sft": "SFT example", "dpo": "DPO pair", "jsonl": "rated call"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``7d``, ``12h``) or an ISO 8601 time or date (UTC when no zone)."""
    from llmpulse.analyzers.framework.errors import AnalyzerInputError
    from llmpulse.analyzers.framework.windows import parse_duration

    stripped = text.strip()
    if stripped[:1].isdigit() and not any(c in stripped for c in "-:T"):
        return (now or datetime.now(timezone.utc)) - parse_duration(stripped)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise AnalyzerInputError(
            f"bad --since {text[:40]!r}: give a duration (30d, 12h) or a time (2025-06-01, 2025-06-01T12:00:00Z)"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def add_selection_args(parser: argparse.ArgumentParser, *, min_help: str) -> None:
    """The options that pick the rated calls (shared with ``references add-from-calls``)."""
    parser.add_argument("--min-score", type=_score, default=1.0, help=min_help)
    parser.add_argument("--since", help="calls since this time or for this long back: 30d, 2025-06-01 (default: all)")
    parser.add_argument("--service", help="only calls of this service")
    parser.add_argument("--prompt-template", help="only calls made with this prompt template")
    parser.add_argument("--dsn", help="store DSN (default: $LLMPULSE_DSN, else the embedded store in ./.llmpulse)")
    parser.add_argument("--database", help="database name (default: from the DSN, else 'llmpulse')")


def register(verbs: Any) -> None:
    """Add ``export feedback``; import nothing heavy here."""
    export = verbs.add_parser("export", help="export data from the store (feedback as fine-tuning data)")
    actions = export.add_subparsers(dest="export_verb", metavar="WHAT")
    actions.required = True
    feedback = actions.add_parser(
        "feedback",
        help="the calls with human feedback as SFT, DPO or plain JSONL",
        description="sft: OpenAI chat fine-tuning JSONL of the calls whose mean feedback score is at least "
        "--min-score. dpo: {prompt, chosen, rejected} pairs (TRL's conversational format) from calls with the "
        "same input messages, one accepted (>= --min-score) and one rejected (<= --max-score). jsonl: every "
        "rated call with its messages, answer and feedback. Content is exported as stored (redacted at capture).",
    )
    feedback.add_argument("--format", required=True, choices=("sft", "dpo", "jsonl"), help="sft, dpo or jsonl")
    feedback.add_argument("--out", required=True, metavar="FILE", help="the JSONL file to write")
    add_selection_args(feedback, min_help="score at which an answer is accepted (default 1)")
    feedback.add_argument(
        "--max-score", type=_score, default=0.0, help="dpo: score at or below which an answer is rejected (default 0)"
    )
    feedback.set_defaults(handler=handle_export)


def handle_export(args: argparse.Namespace) -> int:
    from llmpulse.analyzers.io.contract import open_store
    from llmpulse.analyzers.io.feedback import read_rated_calls

    from .datasets import Scores, build

    scores = Scores(min_score=args.min_score, max_score=args.max_score)  # bad options fail before the store opens
    since = parse_since(args.since) if args.since else EPOCH
    until = datetime.now(timezone.utc)
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory: give a file name")
    client, database = open_store(args)
    try:
        calls = read_rated_calls(
            client, database, since=since, until=until, service=args.service, prompt_template=args.prompt_template
        )
        why = None if calls else why_no_rated_calls(client, database, args, since, until)
    finally:
        client.close()
    scope = _scope(args, since)
    if why:
        print(f"nothing written to {out}: {why}", file=sys.stderr)
        return EXIT_EMPTY
    export = build(args.format, calls, scores)
    name = _NAMES[args.format]
    if not export.records:
        print(
            f"nothing written to {out}: none of the {len(calls)} rated call(s) {scope} made a {name}: "
            f"{_reasons(export.skipped)}",
            file=sys.stderr,
        )
        return EXIT_EMPTY
    write_jsonl(out, export.records)
    print(f"wrote {len(export.records)} {name}(s) to {out} from {len(calls)} rated call(s) {scope}")
    if export.skipped:
        print(f"left out: {_reasons(export.skipped)}")
    return 0


def why_no_rated_calls(client: Any, database: str, args: argparse.Namespace, since: datetime, until: datetime) -> str:
    """Why no call was read: no calls, no feedback, or none with the prompt template."""
    from llmpulse.analyzers.io.feedback import count_calls, read_rated_calls

    scope = _scope(args, since, template=False)
    calls, feedback = count_calls(client, database, since=since, until=until, service=args.service)
    if not calls:
        return f"no LLM calls {scope}"
    if not feedback:
        return f"{calls} LLM call(s) {scope} but no feedback on them (record it with llmpulse.agent.feedback())"
    rated = read_rated_calls(client, database, since=since, until=until, service=args.service)
    templates = sorted({c.prompt_template or "(none)" for c in rated})
    return (
        f"no rated call {scope} used prompt template {args.prompt_template!r};"
        f" the {len(rated)} rated call(s) used {', '.join(templates)}"
    )


def _scope(args: argparse.Namespace, since: datetime, *, template: bool = True) -> str:
    parts = [f"since {since:%Y-%m-%d %H:%M:%S} UTC" if since > EPOCH else "in the store"]
    if args.service is not None:
        parts.append(f"of service {args.service!r}")
    if template and args.prompt_template is not None:
        parts.append(f"with prompt template {args.prompt_template!r}")
    return " ".join(parts)


def _reasons(skipped: Counter[str]) -> str:
    return "; ".join(f"{count} {reason}" for reason, count in skipped.most_common())


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write all records or none: a temporary file beside ``path``, renamed over it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for record in records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
