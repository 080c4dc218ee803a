"""Run the test suite's store through chDB 2.x (ClickHouse 24.8), whose Python API clickhouse-connect cannot open.

clickhouse-connect's chDB backend opens ``chdb.connect(path)`` and calls the connection's ``query`` /
``send_query`` with server-side query parameters; chDB 2.1.1 (ClickHouse 24.8.4, the version the compose
file's server runs) has only ``chdb.session.Session(path).query(sql, format)``, without parameters.
This pytest plugin (``-p tests.compat.chdb_session_api``, loaded by ``.ci/clickhouse-24.8``) gives chDB
2.x that connection API on top of its own session API, so the schema, the SDK's writer, the panels and
the listings run unchanged, through the real clickhouse-connect client, on the 24.8 engine:

- query parameters become ``SET param_<name> = '<value>'`` statements before the query (ClickHouse's
  own way to give ``{name:Type}`` parameters in a session), so binding still happens in the engine;
- ``send_query`` answers the whole result as one chunk (chDB 2.x does not stream);
- one lock serializes every call: the engine of chDB 2.x is one global instance;
- ``SET date_time_input_format = ...`` (which clickhouse-connect sends when it opens a client, as it
  does to a server) is kept and given to each later ``INSERT`` as a ``SETTINGS`` clause: a session-wide
  ``SET`` of that setting breaks every later query of chDB 2.1.1 ("Syntax error ... (end of query)",
  then "Database _temporary_and_external_tables already exists" and a crash). Any other ``SET`` runs;
- ``INSERT INTO t (columns) FROM INFILE 'file' ... FORMAT <text format>`` (how the backend inserts)
  sends the file's rows inline instead: the 24.8 engine of chDB reads an INFILE into all of the table's
  columns in order, ignoring the column list (a ClickHouse server takes the rows in the request body).

With a chDB that has ``connect`` (3.0 and later) the plugin changes nothing.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

_LOCK = threading.Lock()
_HELD_SETTINGS = frozenset({"date_time_input_format"})
_SET = re.compile(r"^\s*SET\s+(\w+)\s*=\s*(.+?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_INFILE = re.compile(
    r"^(?P<head>\s*INSERT\s+INTO\s+\S+\s*\(.*?\))\s+FROM\s+INFILE\s+'(?P<path>(?:[^'\\]|\\.)*)'"
    r"(?P<rest>(?:\s+SETTINGS\s.*?)?\s+FORMAT\s+(?P<format>\w+))\s*$",
    re.IGNORECASE | re.DOTALL,
)
_BINARY_FORMATS = frozenset({"native", "rowbinary", "parquet", "arrow"})
_INSERT_FORMAT = re.compile(r"^\s*INSERT\b.*?(\sSETTINGS\s.*?)?(\sFORMAT\s+\w+\s*)$", re.IGNORECASE | re.DOTALL)


def _literal(value: Any) -> str:
    text = str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SessionConnection:
    """``chdb.Connection``'s methods clickhouse-connect uses, over ``chdb.session.Session``."""

    def __init__(self, connection_string: str) -> None:
        from chdb import session

        path = connection_string.split("?", 1)[0]
        self._temporary = None
        if path.startswith(":memory:") or not path:
            self._temporary = tempfile.TemporaryDirectory(prefix="chdb2-")
            path = self._temporary.name
        self._session = session.Session(path)
        self._held: dict[str, str] = {}

    def _with_held_settings(self, text: str) -> str:
        """An INSERT with the held settings it does not name itself, in its SETTINGS clause."""
        match = _INSERT_FORMAT.match(text)
        if not match or not self._held:
            return text
        extra = ", ".join(f"{k} = {v}" for k, v in self._held.items() if k not in (match.group(1) or ""))
        if not extra:
            return text
        head = text[: match.start(2)]
        return f"{head}, {extra}{match.group(2)}" if match.group(1) else f"{head} SETTINGS {extra}{match.group(2)}"

    @staticmethod
    def _inline(text: str) -> str:
        """A text-format INFILE insert with a column list as the same insert with its rows inline."""
        match = _INFILE.match(text)
        if not match or match.group("format").lower() in _BINARY_FORMATS:
            return text
        path = re.sub(r"\\(.)", r"\1", match.group("path"))
        with open(path, encoding="utf-8") as rows:
            return f"{match.group('head')}{match.group('rest')}\n{rows.read()}"

    def query(self, sql: str | bytes, fmt: str = "CSV", params: Mapping[str, Any] | None = None) -> Any:
        text = sql.decode() if isinstance(sql, bytes) else sql
        setting = _SET.match(text)
        if setting and setting.group(1).lower() in _HELD_SETTINGS:
            self._held[setting.group(1).lower()] = setting.group(2)
            return self._session.query("SET param_llmpulse_noop = ''", fmt)
        text = self._inline(self._with_held_settings(text))
        if params:
            text = "".join(f"SET param_{name} = {_literal(value)}; " for name, value in params.items()) + text
        with _LOCK:
            return self._session.query(text, fmt)

    def send_query(self, sql: str | bytes, fmt: str = "CSV", params: Mapping[str, Any] | None = None) -> Iterator:
        return iter([self.query(sql, fmt, params)])

    def close(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None


def engine_version() -> str:
    import chdb

    return str(getattr(chdb, "engine_version", "")) or "unknown"


def pytest_configure(config: Any) -> None:
    import chdb

    if not hasattr(chdb, "connect"):
        chdb.connect = SessionConnection  # type: ignore[attr-defined]


def pytest_report_header(config: Any) -> str:
    import chdb

    return f"chDB {chdb.__version__}, ClickHouse {engine_version()} (through tests.compat.chdb_session_api)"
