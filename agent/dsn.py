"""Where the data lives: parse a store DSN and open a clickhouse-connect client on it.

Accepted forms (DESIGN.md section 2):

- ``chdb:///absolute/path`` (or ``chdb://./relative/path``): the embedded engine, data on local disk;
- ``chdb://memory``: the embedded engine in memory (tests, throwaway runs);
- ``http(s)://user:password@host:port/database``: a ClickHouse server or ClickHouse Cloud.

Every query parameter ``?database=NAME`` names the database for chDB DSNs. A bad DSN raises
:class:`DSNError` naming the wrong part; the password is never part of any message or log line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE = "llmpulse"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_FORMS = "use chdb:///absolute/path, chdb://memory or http(s)://user:password@host:port/database"


class DSNError(ValueError):
    """A store DSN that cannot be used; the message names the wrong part and never the password."""


@dataclass(frozen=True)
class StoreTarget:
    """A parsed DSN: which engine, where, and which database."""

    kind: str  # "chdb" or "http"
    database: str = DEFAULT_DATABASE
    path: str | None = None  # chdb: absolute directory or ":memory:"
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secure: bool = False

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def safe(self) -> str:
        """The DSN with any password masked: the only form that may appear in logs and messages."""
        if self.kind == "chdb":
            location = "memory" if self.path == ":memory:" else f"/{self.path.lstrip('/')}" if self.path else ""
            return f"chdb://{location}?database={self.database}"
        scheme = "https" if self.secure else "http"
        auth = f"{self.username}:***@" if self.password else (f"{self.username}@" if self.username else "")
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.database}"

    def client(self, **settings: Any) -> Any:
        """Open a clickhouse-connect client; no default database, so all SQL names its database."""
        import clickhouse_connect

        if self.kind == "chdb":
            try:
                import chdb  # noqa: F401
            except ImportError as exc:
                raise DSNError(
                    f"the embedded store {self.safe()} needs chDB: pip install 'llmpulse[embedded]'"
                ) from exc
            return clickhouse_connect.get_client(interface="chdb", path=self.path, settings=settings or None)
        return clickhouse_connect.get_client(
            host=self.host,
            port=self.port,
            username=self.username or "default",
            password=self.password or "",
            secure=self.secure,
            settings=settings or None,
            connect_timeout=5,
            send_receive_timeout=30,
        )


def embedded_store_locked(path: str | None) -> bool:
    """True when another process holds the engine lock of an embedded store (its ``status`` file)."""
    if not path or path == ":memory:":
        return False
    status = os.path.join(path, "status")
    if not os.path.exists(status):
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return False
    try:
        with open(status, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def open_error_message(target: StoreTarget, exc: BaseException) -> str:
    """A user-facing explanation of why a store could not be opened (no password, no engine noise)."""
    text = str(exc)
    where = target.safe()
    if target.embedded and ("Cannot lock file" in text or embedded_store_locked(target.path)):
        return (
            f"the embedded store {where} is already open in another process; one process may open a chDB path. "
            "Stop that process, send OTLP to it (llmpulse agent), or use another path."
        )
    if "already initialized with path" in text:
        return (
            "this process already opened another embedded store; a process can open one chDB path in its "
            f"lifetime (wanted {where})"
        )
    return f"could not open the store {where}: {type(exc).__name__}: {text[:500]}"


def default_dsn() -> str:
    """The embedded store in ``./.llmpulse/store`` (the spool defaults to ``./.llmpulse/spool``)."""
    return "chdb:///" + os.path.abspath(os.path.join(".llmpulse", "store")).lstrip("/")


def _mask(dsn: str) -> str:
    """Replace the password of a URL-shaped string without parsing it strictly (it may be malformed)."""
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", dsn)


def parse_dsn(dsn: str | None, *, database: str | None = None) -> StoreTarget:
    """Parse a DSN; ``database`` overrides the one the DSN names."""
    if dsn is None or not dsn.strip():
        dsn = default_dsn()
    dsn = dsn.strip()
    shown = _mask(dsn)
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:
        raise DSNError(f"cannot parse store DSN {shown!r}: {exc}; {_FORMS}") from None
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    if scheme == "chdb":
        target = _parse_chdb(parts, query, shown)
    elif scheme in ("http", "https"):
        target = _parse_http(parts, query, shown, secure=scheme == "https")
    elif not scheme:
        raise DSNError(f"store DSN {shown!r} has no scheme; {_FORMS}")
    else:
        raise DSNError(f"unsupported scheme {parts.scheme!r} in store DSN {shown!r}; {_FORMS}")
    if database is not None:
        _check_database(database, shown)
        target = StoreTarget(**{**target.__dict__, "database": database})
    return target


def _check_database(name: str, shown: str) -> str:
    if not _IDENTIFIER.match(name):
        raise DSNError(
            f"database name {name!r} in store DSN {shown!r} is not valid: use letters, digits and '_', "
            "starting with a letter or '_' (at most 64 characters)"
        )
    return name


def _single(query: dict[str, list[str]], allowed: set[str], shown: str) -> dict[str, str]:
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise DSNError(
            f"unknown DSN parameter(s) {', '.join(unknown)} in {shown!r}; allowed: {', '.join(sorted(allowed))}"
        )
    return {key: values[-1] for key, values in query.items()}


def _parse_chdb(parts: Any, query: dict[str, list[str]], shown: str) -> StoreTarget:
    params = _single(query, {"database"}, shown)
    database = _check_database(params.get("database", DEFAULT_DATABASE), shown)
    host = parts.netloc
    if host == "memory":
        if parts.path not in ("", "/"):
            # chdb://memory/dbname, as clickhouse-connect accepts it
            database = _check_database(parts.path.strip("/"), shown)
        return StoreTarget(kind="chdb", path=":memory:", database=database)
    if host in (".", ".."):
        path = os.path.abspath(host + unquote(parts.path))
    elif host:
        raise DSNError(
            f"the part after chdb:// in {shown!r} must be 'memory', '.' or empty (chdb:///absolute/path); "
            f"got host {host!r}"
        )
    else:
        path = unquote(parts.path)
    if not path or path == "/":
        raise DSNError(f"store DSN {shown!r} names no directory: use chdb:///absolute/path/to/store")
    if os.path.exists(path) and not os.path.isdir(path):
        raise DSNError(f"store path {path!r} in {shown!r} exists and is not a directory")
    return StoreTarget(kind="chdb", path=os.path.realpath(path), database=database)


def _parse_http(parts: Any, query: dict[str, list[str]], shown: str, *, secure: bool) -> StoreTarget:
    _single(query, set(), shown)
    if not parts.hostname:
        raise DSNError(f"store DSN {shown!r} names no host: use http(s)://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raw_port = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        raise DSNError(f"port {raw_port!r} in store DSN {shown!r} is not a number from 1 to 65535") from None
    if port is None:
        port = 8443 if secure else 8123
    if not 0 < port < 65536:
        raise DSNError(f"port {port} in store DSN {shown!r} is not a number from 1 to 65535")
    path = parts.path.strip("/")
    if "/" in path:
        raise DSNError(f"the path of store DSN {shown!r} must be a single database name, got {path!r}")
    database = _check_database(unquote(path), shown) if path else DEFAULT_DATABASE
    return StoreTarget(
        kind="http",
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        secure=secure,
        database=database,
    )
