"""Where the data lives: parse a store DSN and open a clickhouse-connect client on it.

Accepted forms (the embedded engine by default; a server or a cluster for more than one machine):

- ``chdb:///absolute/path`` (or ``chdb://./relative/path``): the embedded engine, data on local disk;
- ``chdb://memory``: the embedded engine in memory (tests, throwaway runs);
- ``http(s)://user:password@host:port/database``: a ClickHouse server or ClickHouse Cloud.

Every query parameter ``?database=NAME`` names the database for chDB DSNs. A bad DSN raises
:class:`DSNError` naming the wrong part; the password is never part of any message or log line.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

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
    username: str | None = field(default=None, repr=False)
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
        auth = "***@" if self.password or self.username else ""  # no part of the userinfo, not even the user
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
            return _open_private(
                self.path,
                lambda: clickhouse_connect.get_client(
                    interface="chdb", path=self.path, settings={**EMBEDDED_SETTINGS, **settings}
                ),
            )
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


# The embedded engine shares the process (and its memory) with the app or the analyzers: sorts and
# aggregations beyond these sizes spill to the store's tmp/ directory instead of growing resident memory.
EMBEDDED_SETTINGS: dict[str, Any] = {
    "max_bytes_before_external_sort": 256 * 1024 * 1024,
    "max_bytes_before_external_group_by": 256 * 1024 * 1024,
}
STORE_DIR_MODE = 0o700
_PRIVATE_UMASK = 0o077


def _open_private(path: str | None, open_engine: Any) -> Any:
    """Open an embedded store that only its owner can read: it holds prompts and completions.

    The directory is made 0700 before the engine starts (so nothing below it is reachable by others,
    including parts the engine writes later with the process umask), the engine's first files are
    created under umask 077, and files left readable by an older version are made owner-only.
    """
    if not path or path == ":memory:":
        return open_engine()
    os.makedirs(path, mode=STORE_DIR_MODE, exist_ok=True)
    was_open_to_others = bool(os.stat(path).st_mode & 0o077)
    os.chmod(path, STORE_DIR_MODE)
    previous = os.umask(_PRIVATE_UMASK)  # process-wide, so only around the engine's start
    try:
        client = open_engine()
    finally:
        os.umask(previous)
    if was_open_to_others:  # a store from before 0700 (or made by hand): tighten what is already there
        make_private(path)
    return client


def make_private(path: str) -> None:
    """Remove group and other permissions from everything under ``path`` (symlinks left alone)."""
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            full = os.path.join(root, name)
            try:
                mode = os.lstat(full).st_mode
                if not stat.S_ISLNK(mode) and mode & 0o077:
                    os.chmod(full, stat.S_IMODE(mode) & 0o700)
            except OSError:  # a part merged away meanwhile
                continue


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
    return f"could not open the store {where}: {type(exc).__name__}: {scrub(text, target)[:500]}"


def scrub(text: str, target: StoreTarget) -> str:
    """``text`` with the target's password and user name (raw and percent-encoded) replaced by ``***``."""
    for secret in (target.password, target.username):
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, "***")
    return text


def default_dsn() -> str:
    """The embedded store in ``./.llmpulse/store`` (the spool defaults to ``./.llmpulse/spool``)."""
    return "chdb:///" + os.path.abspath(os.path.join(".llmpulse", "store")).lstrip("/")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_RESERVED_IN_USERINFO = "/?#@"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _split_userinfo(dsn: str) -> tuple[str, str | None, str]:
    """(``scheme://`` prefix, userinfo or None, the rest) split at the LAST '@' of the authority.

    A password may hold any character, so the userinfo is cut off before anything else looks at the
    DSN; only the rest may appear in messages. A path right after ``//`` (``chdb:///dir@x``) has none.
    """
    found = _SCHEME.match(dsn)
    prefix = found.group(0) if found else ""
    rest = dsn[len(prefix) :]
    if prefix.lower() == "chdb://":  # a path, which may hold '@': only one before its first '/' counts
        authority, slash, path = rest.partition("/")
        if "@" not in authority:
            return prefix, None, rest
        userinfo, _, host = authority.rpartition("@")
        return prefix, userinfo, host + slash + path
    if rest.startswith("/") or "@" not in rest:
        return prefix, None, rest
    userinfo, _, host_part = rest.rpartition("@")
    return prefix, userinfo, host_part


def _shown(prefix: str, userinfo: str | None, rest: str) -> str:
    """The DSN as messages may show it: the whole userinfo replaced by ``***``."""
    return f"{prefix}{'***@' if userinfo is not None else ''}{rest}"


def _check_userinfo(userinfo: str, shown: str) -> None:
    """Refuse a userinfo that is not a valid URL part; the message names the rule, never the value."""
    if any(char in _RESERVED_IN_USERINFO for char in userinfo) or _BAD_PERCENT.search(userinfo):
        raise DSNError(
            f"the user name or password of store DSN {shown!r} is not valid in a URL: percent-encode the "
            "reserved characters # / ? @ : and % in it (as %23 %2F %3F %40 %3A %25), e.g. with "
            "urllib.parse.quote(password, safe='')"
        )


def parse_dsn(dsn: str | None, *, database: str | None = None) -> StoreTarget:
    """Parse a DSN; ``database`` overrides the one the DSN names."""
    if dsn is None or not dsn.strip():
        dsn = default_dsn()
    dsn = dsn.strip()
    prefix, userinfo, rest = _split_userinfo(dsn)
    shown = _shown(prefix, userinfo, rest)
    if not prefix:
        raise DSNError(f"store DSN {shown!r} has no scheme; {_FORMS}")
    scheme = prefix[:-3].lower()
    if scheme not in ("chdb", "http", "https"):
        raise DSNError(f"unsupported scheme {prefix[:-3]!r} in store DSN {shown!r}; {_FORMS}")
    if userinfo is not None:
        if scheme == "chdb":
            raise DSNError(f"store DSN {shown!r}: a chdb:// DSN takes no user name or password")
        _check_userinfo(userinfo, shown)
    try:
        parts = urlsplit(prefix + rest)  # the userinfo never reaches urllib's messages
    except ValueError:
        raise DSNError(f"cannot parse store DSN {shown!r} (host, port or brackets); {_FORMS}") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    if scheme == "chdb":
        target = _parse_chdb(parts, query, shown)
    else:
        target = _parse_http(parts, query, shown, secure=scheme == "https", userinfo=userinfo)
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
        # not echoed: a mistyped credential (chdb://user:pa/ss@...) would land here
        raise DSNError("the part after chdb:// in a store DSN must be 'memory', '.' or empty (chdb:///absolute/path)")
    else:
        path = unquote(parts.path)
    if not path or path == "/":
        raise DSNError(f"store DSN {shown!r} names no directory: use chdb:///absolute/path/to/store")
    if os.path.exists(path) and not os.path.isdir(path):
        raise DSNError(f"store path {path!r} in {shown!r} exists and is not a directory")
    return StoreTarget(kind="chdb", path=os.path.realpath(path), database=database)


def _parse_http(
    parts: Any, query: dict[str, list[str]], shown: str, *, secure: bool, userinfo: str | None
) -> StoreTarget:
    _single(query, set(), shown)
    if not parts.hostname:
        raise DSNError(f"store DSN {shown!r} names no host: use http(s)://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raw_port = parts.netloc.rpartition(":")[2]
        raise DSNError(f"port {raw_port!r} in store DSN {shown!r} is not a number from 1 to 65535") from None
    if port is None:
        port = 8443 if secure else 8123
    if not 0 < port < 65536:
        raise DSNError(f"port {port} in store DSN {shown!r} is not a number from 1 to 65535")
    path = parts.path.strip("/")
    if "/" in path:
        raise DSNError(f"the path of store DSN {shown!r} must be a single database name, got {path!r}")
    database = _check_database(unquote(path), shown) if path else DEFAULT_DATABASE
    username, _, password = (userinfo or "").partition(":")
    return StoreTarget(
        kind="http",
        host=parts.hostname,
        port=port,
        username=unquote(username) if username else None,
        password=unquote(password) if password else None,
        secure=secure,
        database=database,
    )
