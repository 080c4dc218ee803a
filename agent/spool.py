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
from dataclasses import dataclass

from . import _json
from ._log import logger

_SUFFIX = ".batch.json"
FORMAT_VERSION = 1


@dataclass
class Batch:
    """Rows for one table (JSONCompactEachRow bytes), with the token that makes its insert idempotent."""

    table: str
    columns: list[str]
    payload: bytes | bytearray
    token: str
    count: int


class Spool:
    """Directory of pending batches; oldest first. Safe for one writer thread per process."""

    def __init__(self, directory: str, max_bytes: int, *, fsync: bool = True) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.dropped_records = 0
        self._seq = 0
        self._lock = threading.Lock()
        os.makedirs(directory, exist_ok=True)
        self._clean_partial()

    def _clean_partial(self) -> None:
        """Temporary files of this pid's predecessors are torn writes: remove them."""
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                pid = name.split(".")[-2] if name.count(".") >= 2 else ""
                if not pid.isdigit() or not _alive(int(pid)):
                    _remove(os.path.join(self.directory, name))

    def files(self) -> list[str]:
        """Pending batch files, oldest first."""
        try:
            names = [n for n in os.listdir(self.directory) if n.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []
        return [os.path.join(self.directory, n) for n in sorted(names)]

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

    def put(self, batch: Batch, *, dead: bool = False) -> str:
        """Write a batch; when over the size cap, drop the oldest batches (and count their records).

        ``dead=True`` files a batch the store refused as bad data under ``dead/``, kept for inspection
        and never replayed. Returns the file's path.
        """
        header = _json.dumps_bytes(
            {
                "format": FORMAT_VERSION,
                "table": batch.table,
                "columns": batch.columns,
                "token": batch.token,
                "count": batch.count,
            }
        )
        payload = header + b"\n" + batch.payload
        with self._lock:
            self._seq += 1
            stem = f"{time.time_ns():020d}-{os.getpid():07d}-{self._seq:08d}-{batch.table}-{batch.count}"
        directory = os.path.join(self.directory, "dead") if dead else self.directory
        if dead:
            os.makedirs(directory, exist_ok=True)
        else:
            self._make_room(len(payload))
        final = os.path.join(directory, stem + _SUFFIX)
        temporary = f"{final}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(payload)
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, final)
        return final

    def _make_room(self, incoming: int) -> None:
        files = self.files()
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
                self.dropped_records += dropped
                logger.error(
                    "llmpulse: spool is over %d bytes; dropped the oldest batch (%d records)", self.max_bytes, dropped
                )
            total -= sizes[index]
            index += 1

    def load(self, path: str) -> Batch | None:
        """Read a batch; a file that cannot be parsed is moved aside and reported, never silently lost."""
        try:
            with open(path, "rb") as handle:
                header, _, payload = handle.read().partition(b"\n")
            doc = _json.loads(header)
            if doc.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown spool format {doc.get('format')!r}")
            return Batch(doc["table"], doc["columns"], payload, doc["token"], int(doc["count"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self.quarantine(path, "unreadable")
            return None

    def quarantine(self, path: str, reason: str) -> None:
        dead = os.path.join(self.directory, "dead")
        os.makedirs(dead, exist_ok=True)
        try:
            os.replace(path, os.path.join(dead, os.path.basename(path)))
            logger.error("llmpulse: moved spool file %s to %s (%s)", os.path.basename(path), dead, reason)
        except OSError:
            pass

    def remove(self, path: str) -> None:
        _remove(path)


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
