"""Rows on their way to a table: the one :class:`Batch` type and the row encoding every writer shares.

Rows are JSONCompactEachRow (one JSON array per row, in the batch's column order), built with orjson.
Attribute values stay typed in the JSON; the insert settings (``store.insert``) make ClickHouse store
numbers, bools, arrays and objects as their JSON text, which is the OpenTelemetry Collector's
``pcommon.Value.AsString()`` form, so rows written by the SDK, by the receiver and by a collector read
the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import orjson

from . import fastjson

ROW_FORMAT = "JSONCompactEachRow"  # one JSON array per row, in the batch's column order


class Journal(Protocol):
    """Where a batch's rows were logged before they were acknowledged (the sidecar's write-ahead log)."""

    def seal(self, seqs: Sequence[int]) -> str:
        """Record that the records ``seqs`` form one batch; returns the batch's insert token."""
        ...

    def releaser(self, seqs: Sequence[int]) -> Callable[[], None]:
        """The ``on_settled`` of a batch made of ``seqs``: marks them done in the log."""
        ...


@dataclass(eq=False)
class Batch:
    """Rows for one table (JSONCompactEachRow bytes), with the token that makes their insert idempotent.

    Every producer hands rows on as a Batch: the SDK's export thread, the OTLP receiver, the collectors,
    the spool and the write-ahead log. A batch made by a producer that does not insert it carries no
    token yet (``""``); the pipeline joins such batches per table into inserts and gives each a token.
    """

    table: str
    columns: Sequence[str]
    payload: bytes | bytearray
    token: str
    count: int
    # Row counts of the requests or chunks joined into this batch, in order (empty: one part). A batch the
    # store refuses as bad data is split along these first, then by row, so one client's bad row does not
    # take the other clients' rows with it.
    parts: tuple[int, ...] = ()
    # Called once by the writer when the batch no longer needs its source (stored, in the spool, filed as
    # dead or counted as dropped): the sidecar's write-ahead log releases the requests it came from.
    on_settled: Callable[[], None] | None = None
    # Set on rows logged in a write-ahead log and not yet sealed: the log and the record's sequence number.
    # The pipeline seals the records it joins into one insert before inserting them (``Journal.seal``).
    journal: Journal | None = None
    seq: int = 0


def new_token() -> str:
    return uuid.uuid4().hex


def attribute_string(value: Any) -> str:
    """The collector's ``pcommon.Value.AsString()``: bools lower-case, numbers decimal, lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return fastjson.dumps(value)


DATETIME64_TEXT_FROM = 1_000_000_000_000_000_000  # 2001-09-09: from here the seconds have ten digits
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def datetime64(ns: int) -> str | int | float:
    """A DateTime64(9) value as JSON input formats read it exactly: seconds, a dot, nine digits.

    Before 2001-09-09 the seconds have fewer than ten digits and ClickHouse would read the text as a
    date; such instants (in practice 0, OTLP's "unset") are written as a JSON number instead.
    """
    if ns >= DATETIME64_TEXT_FROM:
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    return ns // 1_000_000_000 if ns % 1_000_000_000 == 0 else ns / 1e9


ROW_OPTIONS = orjson.OPT_APPEND_NEWLINE  # keys are str by construction; anything odd takes the fallback


def row_bytes(row: list[Any]) -> bytes:
    """One row as a JSON array and a newline; a value orjson refuses takes the slow, total path."""
    try:
        return orjson.dumps(row, default=str, option=ROW_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits
        return (fastjson.dumps([_plain(v) for v in row]) + "\n").encode()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): attribute_string(v) for k, v in value.items()}
    return value


class RowBuffer:
    """JSONCompactEachRow rows appended to one growing buffer, the payload of a batch.

    Why not a list of per-row ``bytes`` joined at the end: orjson returns each row in a buffer of its
    own, and keeping thousands of them alive costs a fresh memory page per row (a minor page fault per
    kept result). Copying each row into one buffer frees orjson's at once, so its memory is reused.
    """

    __slots__ = ("count", "data")

    def __init__(self) -> None:
        self.data = bytearray()
        self.count = 0

    def append(self, row: list[Any]) -> None:
        self.data += row_bytes(row)
        self.count += 1


def rows_to_batch(table: str, rows: Sequence[Mapping[str, Any]]) -> Batch:
    """Rows given as mappings (one table, the same keys in every row) as a JSONCompactEachRow batch.

    Collectors and the sidecar hand plain data here: numbers, strings, ``None`` (stored as NULL in
    Nullable columns), lists, dicts (Map columns), and timezone-aware ``datetime`` values, which are
    written as epoch seconds so the stored instant never depends on the server's time zone.
    """
    if not rows:
        raise ValueError("rows_to_batch needs at least one row")
    columns = list(rows[0])
    buffer = RowBuffer()
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"every row for {table} must have the columns {columns}, got {list(row)}")
        buffer.append([_cell(row[c]) for c in columns])
    return Batch(table, columns, buffer.data, new_token(), buffer.count)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
        return datetime64((value - _EPOCH) // timedelta(microseconds=1) * 1000)
    return value
