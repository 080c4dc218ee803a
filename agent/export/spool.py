"""A size-capped on-disk spool of batches that could not be written to the store.

Each batch is one file (a JSON header line, then the JSONCompactEachRow rows), written to a temporary name and renamed into place, so a process killed
mid-write (even SIGKILL) leaves either the whole batch or nothing. File names sort in write order
(nanosecond clock, then pid and a sequence number), so replay preserves order across restarts and
across processes sharing one spool directory. Every batch carries the insert deduplication token it
was first tried with, so a batch replayed after an insert whose reply was lost is not stored twice.
"""

from __future__ import annotations

import os
import threading
import time

from llmpulse.agent._log import logger
from llmpulse.agent.store import fastjson
from llmpulse.agent.store.rows import Batch

_SUFFIX = ".batch.json"
FORMAT_VERSION = 1


class Spool:
    """Directory of pending batches; oldest first. Safe for one writer thread per process."""

    def __init__(self, directory: str, max_bytes: int, *, fsync: bool = True) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.dropped_records = 0
        self.dead_evicted_records = 0  # refused rows removed from dead/ to keep it under max_bytes
        self._seq = 0
        self._lock = threading.Lock()
        self.dead_directory = os.path.join(directory, "dead")
        _private_dir(directory)
        self._clean_partial()
        _tighten(directory)
        if os.path.isdir(self.dead_directory):
            _tighten(self.dead_directory)

    def _clean_partial(self) -> None:
        """Temporary files of this pid's predecessors are torn writes: remove them."""
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                pid = name.split(".")[-2] if name.count(".") >= 2 else ""
                if not pid.isdigit() or not _alive(int(pid)):
                    _remove(os.path.join(self.directory, name))

    def files(self, directory: str | None = None) -> list[str]:
        """Pending batch files (or those of ``directory``, e.g. dead/), oldest first."""
        directory = directory or self.directory
        try:
            names = [n for n in os.listdir(directory) if n.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []
        return [os.path.join(directory, n) for n in sorted(names)]

    def pending(self) -> bool:
        return bool(self.files())

    def size_bytes(self) -> int:
        total = 0
        for path in self.files():
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total

    def pending_records(self) -> int:
        return sum(_count_from_name(p) for p in self.files())

    def put(self, batch: Batch, *, dead: bool = False, reason: str = "") -> str:
        """Write a batch (file 0600); when over the size cap, drop the oldest batches (and count their records).

        ``dead=True`` files a batch the store refused as bad data under ``dead/`` with the store's
        ``reason``, kept for inspection and never replayed; ``dead/`` has the same byte cap, oldest out,
        counted in ``dead_evicted_records``. Returns the file's path.
        """
        doc = {
            "format": FORMAT_VERSION,
            "table": batch.table,
            "columns": batch.columns,
            "token": batch.token,
            "count": batch.count,
        }
        if reason:
            doc["reason"] = reason
        header = fastjson.dumps_bytes(doc)
        payload = header + b"\n" + batch.payload
        with self._lock:
            self._seq += 1
            stem = f"{time.time_ns():020d}-{os.getpid():07d}-{self._seq:08d}-{batch.table}-{batch.count}"
        directory = self.dead_directory if dead else self.directory
        if dead:
            _private_dir(directory)
        self._make_room(len(payload), dead=dead)
        final = os.path.join(directory, stem + _SUFFIX)
        temporary = f"{final}.{os.getpid()}.tmp"
        try:
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(payload)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            _remove(temporary)  # a half-written file (disk full) must not hold space or look like a batch
            raise
        return final

    def _make_room(self, incoming: int, *, dead: bool = False) -> None:
        files = self.files(self.dead_directory if dead else None)
        sizes = []
        for path in files:
            try:
                sizes.append(os.path.getsize(path))
            except OSError:
                sizes.append(0)
        total = sum(sizes)
        index = 0
        while total + incoming > self.max_bytes and index < len(files):
            path = files[index]
            dropped = _count_from_name(path)
            if _remove(path):
                if dead:
                    self.dead_evicted_records += dropped
                    logger.error(
                        "llmpulse: spool/dead/ is over %d bytes; removed its oldest batch (%d refused rows)",
                        self.max_bytes,
                        dropped,
                    )
                else:
                    self.dropped_records += dropped
                    logger.error(
                        "llmpulse: spool is over %d bytes; dropped the oldest batch (%d records)",
                        self.max_bytes,
                        dropped,
                    )
            total -= sizes[index]
            index += 1

    def load(self, path: str) -> Batch | None:
        """Read a batch; a file that cannot be parsed is moved aside and reported, never silently lost.

        An error opening or reading it (no file descriptors, I/O error) is raised: the file is fine, the
        replay tries it again later.
        """
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        header, _, payload = data.partition(b"\n")
        try:
            doc = fastjson.loads(header)
            if doc.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown spool format {doc.get('format')!r}")
            return Batch(doc["table"], doc["columns"], payload, doc["token"], int(doc["count"]))
        except (ValueError, KeyError, TypeError):
            self.quarantine(path, "unreadable")
            return None

    def quarantine(self, path: str, reason: str) -> None:
        dead = self.dead_directory
        _private_dir(dead)
        try:
            os.replace(path, os.path.join(dead, os.path.basename(path)))
            logger.error("llmpulse: moved spool file %s to %s (%s)", os.path.basename(path), dead, reason)
        except OSError:
            pass

    def remove(self, path: str) -> None:
        _remove(path)


def _private_dir(directory: str) -> None:
    """Create ``directory`` owner-only (0700); an existing one is tightened: spooled rows hold prompts."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        os.chmod(directory, 0o700)
    except OSError:
        pass


def _tighten(directory: str) -> None:
    """Make batch files an older version left world-readable owner-only (0600)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            if os.path.isfile(path) and os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        except OSError:
            pass


def _count_from_name(path: str) -> int:
    stem = os.path.basename(path)[: -len(_SUFFIX)]
    tail = stem.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
