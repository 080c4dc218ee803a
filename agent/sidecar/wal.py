"""The sidecar's write-ahead log: an OTLP request is on disk before it is acknowledged.

A request's encoded rows are appended as one record per table (a sequence number, the table, the
columns, the rows) and the answer waits for the group commit: one writer thread writes every record
queued since its last pass in one ``write`` and, unless ``fsync`` is ``off``, one ``fsync``. Only then
is the request answered 200 and handed to the pipeline.

Before the pipeline inserts records it *seals* them: a seal record names the batch's deduplication
token and the records it joins, in order. When the writer has settled the batch (stored, spooled,
filed as dead or counted as dropped) a release record marks them done. After a crash the log is read
back: sealed, unreleased batches are rebuilt with the same rows and the same token, so an insert that
had reached the store before the crash is dropped by its deduplication; unsealed records are queued
as new. Segments are deleted, oldest first, once all their records are released.

Every record carries a CRC-32, so a tail torn by a kill mid-write is detected and cut; nothing
acknowledged is in a torn tail, because the answer waits for the whole write.

fsync policies (all three survive a SIGKILL of the agent: written data is in the kernel's page cache):

* ``always``: each request's records (and each seal) are written and fsync'd on their own; a request is answered
  after its own fsync. Survives power loss too. One fsync per request: the slowest.
* ``batch`` (default): the records queued while the previous write ran are written together and
  covered by one fsync (group commit); none is answered before that fsync returns, so power loss
  also loses nothing acknowledged. Release records are not waited for: after a
  power loss a few stored batches can be inserted again, with their first token, and are deduplicated.
* ``off``: answered once written, never fsync'd. A power loss or kernel crash can lose what the OS
  had not written back yet (Linux: up to ``vm.dirty_expire_centisecs``, 30 s by default).
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.store import fastjson
from llmpulse.agent.store.rows import Batch

FSYNC_POLICIES = ("always", "batch", "off")
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_SUFFIX = ".wal"
_MAGIC = b"LW"
_HEAD = struct.Struct(">2scII")  # magic, kind, body length, CRC-32 of kind + body
_SEGMENT = b"H"  # first record of a segment: the next sequence number at its creation
_DATA = b"D"  # one table's rows of one request
_SEAL = b"S"  # a batch about to be inserted: its token and its records, in order
_DONE = b"R"  # records released: their batch is settled
_MAX_BODY = 1 << 31
_SEAL_TIMEOUT_S = 60.0


class WalInUse(RuntimeError):
    """Another process holds the log's directory."""


class WalClosed(RuntimeError):
    """The log was closed (the agent is stopping); the request is not acknowledged."""


@dataclass
class Recovered:
    """What a previous run left unreleased: a sealed batch (``token`` set) or one unsealed record."""

    table: str
    columns: list[str]
    count: int
    seqs: list[int]
    parts: tuple[int, ...]
    token: str | None
    _places: list[tuple[str, int, int]]  # (segment path, payload offset, payload length) per record

    def load(self) -> bytes:
        """The rows, read back from the segments."""
        chunks = []
        for path, offset, length in self._places:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunks.append(handle.read(length))
        return b"".join(chunks)


@dataclass
class _Segment:
    path: str
    size: int = 0
    pending: set[int] = field(default_factory=set)


@dataclass
class _Item:
    kind: bytes
    body: list[bytes | bytearray]
    seqs: list[int]
    future: Future[None] | None


@dataclass
class WalStats:
    records: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    groups: int = 0
    write_errors: int = 0
    torn_bytes_cut: int = 0


class WriteAheadLog:
    """Segments under ``directory``; ``append`` from the event loop, ``seal``/``release`` from the pipeline."""

    def __init__(
        self,
        directory: str,
        *,
        fsync: str = "batch",
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int | None = None,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"wal_fsync must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        self.directory = directory
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(64 << 20, max(1 << 20, max_bytes // 8))
        self.stats = WalStats()
        self.epoch = uuid.uuid4().hex[:16]  # makes every token of this run unique, also after a reset of seqs
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._items: list[_Item] = []
        self._queued_bytes = 0
        self._closing = False
        self._segments: list[_Segment] = []
        self._where: dict[int, _Segment] = {}  # unreleased seq -> its segment
        _make_private_dir(directory)
        self._lock_fd = _lock_directory(directory)
        self.recovered, self._next_seq = self._read_back()
        self._fd = -1
        self._open_segment()
        self._thread = threading.Thread(target=self._run, name="llmpulse-wal", daemon=True)
        self._thread.start()

    # --- callers ---------------------------------------------------------------------------------

    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments) + self._queued_bytes

    def has_room(self, nbytes: int) -> bool:
        """Under ``max_bytes`` with ``nbytes`` more; a log with nothing unreleased takes anything (never refused forever)."""
        with self._lock:  # segments with nothing unreleased are on their way out: not counted
            used = sum(s.size for s in self._segments if s.pending) + self._queued_bytes
            empty = not self._where
        return empty or used + nbytes <= self.max_bytes

    def append(self, rows: Sequence[Any]) -> tuple[list[int], Future[None]]:
        """Queue one record per ``Batch``; the future resolves once they are durable (per the policy)."""
        future: Future[None] = Future()
        seqs: list[int] = []
        with self._lock:
            if self._closing:
                raise WalClosed("the write-ahead log is closed")
            items = []
            for chunk in rows:
                seq = self._next_seq
                self._next_seq += 1
                seqs.append(seq)
                header = fastjson.dumps_bytes(
                    {"seq": seq, "table": chunk.table, "columns": chunk.columns, "count": chunk.count}
                )
                items.append(_Item(_DATA, [header, b"\n", chunk.payload], [seq], None))
            items[-1].future = future
            self._enqueue(items)
        return seqs, future

    def seal(self, seqs: Sequence[int]) -> str:
        """Record that ``seqs`` form one batch; returns its token once the seal is written (fsync'd unless off)."""
        token = f"wal-{self.epoch}-{seqs[0]}-{seqs[-1]}-{len(seqs)}"
        future: Future[None] = Future()
        with self._lock:
            if self._closing:
                raise WalClosed("the write-ahead log is closed")
            self._enqueue([_Item(_SEAL, [fastjson.dumps_bytes({"token": token, "seqs": list(seqs)})], [], future)])
        future.result(_SEAL_TIMEOUT_S)
        return token

    def releaser(self, seqs: Sequence[int]) -> Callable[[], None]:
        """The ``on_settled`` of a batch made of ``seqs``."""
        kept = list(seqs)
        return lambda: self.release(kept)

    def release(self, seqs: Sequence[int]) -> None:
        """Mark records done (their batch is settled). Not waited for: a lost mark only means a deduplicated replay."""
        with self._lock:
            for seq in seqs:
                segment = self._where.pop(seq, None)
                if segment is not None:
                    segment.pending.discard(seq)
            if self._closing and not self._thread.is_alive():
                return  # settled after close (a shutdown past its deadline): replayed and deduplicated next run
            self._enqueue([_Item(_DONE, [fastjson.dumps_bytes({"seqs": list(seqs)})], [], None)])

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, fsync, stop the thread; segments with nothing unreleased are deleted."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)
        with self._lock:
            if self._fd >= 0:
                try:
                    if self.fsync != "off":
                        os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = -1
            self._delete_settled(everything=True)
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the directory for the next agent
                self._lock_fd = -1

    # --- writer thread ---------------------------------------------------------------------------

    def _enqueue(self, items: list[_Item]) -> None:
        self._items.extend(items)
        self._queued_bytes += sum(_HEAD.size + sum(len(part) for part in item.body) for item in items)
        self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._items and not self._closing:
                    self._wake.wait()
                items, self._items = self._items, []
                if not items and self._closing:
                    return
            for group in self._groups(items):
                try:
                    self._commit(group)
                except Exception as exc:  # a bug, not the disk: fail the waiters rather than leave them hanging
                    logger.error("llmpulse agent: write-ahead log writer error", exc_info=True)
                    for item in group:
                        if item.future is not None and not item.future.done():
                            item.future.set_exception(OSError(f"write-ahead log writer error: {exc!r}"))
            with self._lock:
                self._delete_settled()

    def _groups(self, items: list[_Item]) -> list[list[_Item]]:
        """One group per pass, or per waiter under ``always`` (a request's records succeed or fail together)."""
        if self.fsync != "always":
            return [items]
        groups: list[list[_Item]] = [[]]
        for item in items:
            groups[-1].append(item)
            if item.future is not None:
                groups.append([])
        return [group for group in groups if group]

    def _commit(self, group: list[_Item]) -> None:
        """Write a group, fsync it (per the policy), then resolve its futures; on failure, undo and fail them."""
        started = self._size_of_active()
        try:
            if started >= self.segment_bytes:
                self._rotate()
                started = 0
            data = b"".join(_frame(item.kind, item.body) for item in group)
            _write_all(self._fd, data)
            if self.fsync != "off":
                os.fsync(self._fd)
                self.stats.fsyncs += 1
        except OSError as exc:
            self._undo(group, started, exc)
            return
        with self._lock:
            segment = self._segments[-1]
            segment.size += len(data)
            self._queued_bytes -= len(data)
            for item in group:
                if item.kind == _DATA:
                    self._where[item.seqs[0]] = segment
                    segment.pending.add(item.seqs[0])
        self.stats.records += len(group)
        self.stats.bytes_written += len(data)
        self.stats.groups += 1
        for item in group:
            if item.future is not None:
                item.future.set_result(None)

    def _undo(self, group: list[_Item], good_size: int, exc: OSError) -> None:
        """Cut the failed write off (so the segment stays readable), move to a new segment, fail the waiters."""
        self.stats.write_errors += 1
        logger.error("llmpulse agent: write-ahead log write failed (%s); the requests are answered 503", exc)
        try:
            os.ftruncate(self._fd, good_size)
        except OSError:
            pass
        with self._lock:
            self._queued_bytes -= sum(_HEAD.size + sum(len(p) for p in item.body) for item in group)
        try:
            self._rotate()
            failed = [seq for item in group if item.kind == _DATA for seq in item.seqs]
            if failed:  # in case the cut did not happen: never replay what was answered 503
                _write_all(self._fd, _frame(_DONE, [fastjson.dumps_bytes({"seqs": failed})]))
        except OSError:
            logger.error("llmpulse agent: write-ahead log cannot open a new segment", exc_info=True)
        for item in group:
            if item.future is not None:
                item.future.set_exception(exc)

    def _size_of_active(self) -> int:
        with self._lock:
            return self._segments[-1].size

    def _open_segment(self) -> None:
        path = os.path.join(self.directory, f"{self._next_seq:020d}{_SUFFIX}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        head = _frame(_SEGMENT, [fastjson.dumps_bytes({"next_seq": self._next_seq, "epoch": self.epoch})])
        try:
            _write_all(fd, head)
            if self.fsync != "off":
                os.fsync(fd)
                _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            raise
        with self._lock:
            self._segments.append(_Segment(path, len(head)))
            self._fd = fd

    def _rotate(self) -> None:
        old = self._fd
        if old >= 0:
            try:
                if self.fsync != "off":
                    os.fsync(old)
            finally:
                os.close(old)
                self._fd = -1
        with self._lock:
            self._next_seq += 1  # the new segment's name sorts after every record of the old one
        self._open_segment()

    def _delete_settled(self, *, everything: bool = False) -> None:
        """Delete segments, oldest first, with nothing unreleased (the active one too when closing). Lock held."""
        keep_last = 0 if everything else 1
        while len(self._segments) > keep_last and not self._segments[0].pending:
            segment = self._segments.pop(0)
            try:
                os.remove(segment.path)
            except OSError:
                logger.warning("llmpulse agent: could not delete write-ahead log segment %s", segment.path)

    # --- recovery --------------------------------------------------------------------------------

    def _read_back(self) -> tuple[list[Recovered], int]:
        """Index the segments left by earlier runs; returns what to replay and the next sequence number."""
        data: dict[int, tuple[str, list[str], int, tuple[str, int, int]]] = {}
        seals: list[tuple[str, list[int]]] = []
        done: set[int] = set()
        top = 0
        for path in self._segment_files():
            segment = _Segment(path)
            for kind, body, offset in self._records(path):
                if kind == _DATA:
                    header, _, _rest = body.partition(b"\n")
                    doc = fastjson.loads(header)
                    seq = int(doc["seq"])
                    start = offset + _HEAD.size + len(header) + 1
                    data[seq] = (
                        doc["table"],
                        doc["columns"],
                        int(doc["count"]),
                        (path, start, len(body) - len(header) - 1),
                    )
                    segment.pending.add(seq)
                    self._where[seq] = segment
                    top = max(top, seq)
                elif kind == _SEAL:
                    doc = fastjson.loads(body)
                    seals.append((doc["token"], [int(s) for s in doc["seqs"]]))
                    top = max([top, *seals[-1][1]])
                elif kind == _DONE:
                    seqs = [int(s) for s in fastjson.loads(body)["seqs"]]
                    done.update(seqs)
                    top = max([top, *seqs])
                elif kind == _SEGMENT:
                    top = max(top, int(fastjson.loads(body)["next_seq"]))
            segment.size = os.path.getsize(path)
            self._segments.append(segment)
        for seq in done:
            segment = self._where.pop(seq, None)
            if segment is not None:
                segment.pending.discard(seq)
        self._delete_settled(everything=True)
        return _plan(data, seals, set(self._where)), top + 1

    def _segment_files(self) -> list[str]:
        names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        return [os.path.join(self.directory, n) for n in names]

    def _records(self, path: str) -> list[tuple[bytes, bytes, int]]:
        """The segment's whole records; a torn or corrupt tail is cut off the file and logged."""
        with open(path, "rb") as handle:
            blob = handle.read()
        records, offset = [], 0
        while offset < len(blob):
            if len(blob) - offset < _HEAD.size:
                break
            magic, kind, length, crc = _HEAD.unpack_from(blob, offset)
            end = offset + _HEAD.size + length
            if (
                magic != _MAGIC
                or end > len(blob)
                or zlib.crc32(blob[offset + _HEAD.size : end], zlib.crc32(kind)) != crc
            ):
                break
            records.append((kind, blob[offset + _HEAD.size : end], offset))
            offset = end
        if offset < len(blob):
            cut = len(blob) - offset
            self.stats.torn_bytes_cut += cut
            logger.warning(
                "llmpulse agent: write-ahead log %s ends in %d bytes of an unfinished write (never acknowledged); cut",
                os.path.basename(path),
                cut,
            )
            os.truncate(path, offset)
        return records


def logged_rows(
    table: str, columns: Any, payload: bytes | bytearray, count: int, seq: int, log: WriteAheadLog
) -> Batch:
    """Rows logged as record ``seq`` of ``log``, for the pipeline: it seals them into a batch before inserting."""
    return Batch(table, columns, payload, "", count, journal=log, seq=seq)


def _plan(
    data: dict[int, tuple[str, list[str], int, tuple[str, int, int]]],
    seals: list[tuple[str, list[int]]],
    pending: set[int],
) -> list[Recovered]:
    """Sealed batches whose records are all unreleased, rebuilt as sealed; every other unreleased record alone."""
    plan: list[Recovered] = []
    claimed: set[int] = set()
    for token, seqs in seals:
        if not seqs or not all(seq in pending and seq not in claimed for seq in seqs):
            continue
        table, columns = data[seqs[0]][0], data[seqs[0]][1]
        parts = tuple(data[seq][2] for seq in seqs)
        places = [data[seq][3] for seq in seqs]
        plan.append(Recovered(table, columns, sum(parts), list(seqs), parts, token, places))
        claimed.update(seqs)
    for seq in sorted(pending - claimed):
        table, columns, count, place = data[seq]
        plan.append(Recovered(table, columns, count, [seq], (count,), None, [place]))
    return plan


def _frame(kind: bytes, body: list[bytes | bytearray]) -> bytes:
    length = sum(len(part) for part in body)
    if length >= _MAX_BODY:
        raise OSError("write-ahead log record too large")
    crc = zlib.crc32(kind)
    for part in body:
        crc = zlib.crc32(part, crc)
    return b"".join([_HEAD.pack(_MAGIC, kind, length, crc), *body])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_directory(directory: str) -> int:
    """Hold an exclusive lock on the directory for this process's life: two agents must never share a log."""
    import fcntl

    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise WalInUse(f"the write-ahead log {directory!r} is in use by another llmpulse agent") from None
    return fd


def _make_private_dir(directory: str) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        os.chmod(directory, 0o700)
    except OSError:
        pass
