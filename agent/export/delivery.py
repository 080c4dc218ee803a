"""Getting a batch into the store, in order, without losing it: insert, retry, spool, ordered replay.

Runs on the store sink's writer thread, one batch at a time. A batch leaves only stored, in the spool,
filed as refused under ``spool/dead/``, or counted as dropped. While older batches wait in the spool, new
ones queue behind them there, so the store sees every batch in the order it was made; the spool is
replayed oldest first when the store is back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from llmpulse.agent._log import logger
from llmpulse.agent.store.insert import rejects_data
from llmpulse.agent.store.rows import Batch
from llmpulse.agent.store.writer import ClickHouseWriter

from .spool import Spool
from .stats import Counters

_RETRY_DELAYS_S = (0.05, 0.25, 1.0)  # then the batch goes to the spool
_REPLAY_BACKOFF_MAX_S = 30.0
_SPLIT_INSERT_BUDGET = 256  # inserts spent isolating the bad rows of one refused batch; past it the rest is filed
_HOLD_BACKOFF_MIN_S = 0.5  # a batch neither the store nor the spool took is tried again after this, doubling
_HOLD_BACKOFF_MAX_S = 30.0


class Delivery:
    """Stores batches through one writer, with the spool as the fallback; owned by one writer thread."""

    def __init__(self, writer: ClickHouseWriter, spool: Spool, counters: Counters) -> None:
        self.writer = writer
        self.spool = spool
        self.counters = counters
        self.owner = True  # False in a forked child of an embedded store's owner: it only spools
        self.store_ok: bool | None = None  # outcome of the latest insert or replay; None before the first
        self.stopping = threading.Event()  # the pipeline's: set at shutdown, it cuts retries and back-offs
        self._next_replay = 0.0
        self._replay_backoff = 1.0

    def restart(self, stopping: threading.Event) -> None:
        """A new writer thread (a forked child): the pipeline's new stop event, replay at once."""
        self.stopping = stopping
        self.store_ok = None
        self._next_replay = 0.0
        self._replay_backoff = 1.0

    # --- one batch -----------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Store a batch, else spool it, else hold it and try again: it leaves only stored, spooled, filed or counted.

        A batch the store refuses as bad data is split (by the requests joined into it, then in halves)
        until only the refused rows remain; they are filed under ``dead/``. While a batch can be neither
        stored nor spooled (disk full, no file descriptors) the writer holds it and retries with a
        bounded back-off; the queue in front fills, so the SDK counts ``queue_full`` drops and the sidecar
        answers 503, instead of rows vanishing behind a 200. At shutdown a held batch is counted as dropped
        (``spool_write_failed``), or, when it came from the write-ahead log, left there for the next start.
        """
        work: deque[Batch] = deque([batch])
        budget = _SPLIT_INSERT_BUDGET
        delay = _HOLD_BACKOFF_MIN_S
        while work:
            part = work[0]
            try:
                placed = self._place(part, split=budget > 0)
            except Exception:
                logger.error(
                    "llmpulse: unexpected error writing %d rows; holding them to try again", part.count, exc_info=True
                )
                placed = False
            if placed is True:
                work.popleft()
                delay = _HOLD_BACKOFF_MIN_S
                continue
            if placed:  # refused as bad data and split: its halves (or requests) take its place
                work.popleft()
                work.extendleft(reversed(placed))
                budget -= len(placed)
                continue
            with self.counters.lock:
                self.counters.stats.held = sum(p.count for p in work)
            if self.stopping.is_set():
                self._abandon(batch, work)
                return
            self.stopping.wait(delay)
            delay = min(delay * 2, _HOLD_BACKOFF_MAX_S)
        with self.counters.lock:
            self.counters.stats.held = 0
        self._settle(batch)

    def _place(self, batch: Batch, *, split: bool, in_order: bool = True) -> bool | list[Batch]:
        """One try: True when stored, spooled or filed as dead; False when nothing took it; the parts of a
        refused batch to try instead. ``in_order``: go to the spool while older batches wait there."""
        if self.owner and not (in_order and self._spool_waiting()):
            outcome = self._insert_with_retry(batch)
            if outcome is True:
                with self.counters.lock:
                    self.counters.stats.exported += batch.count
                return True
            if outcome is not False:
                self.store_ok = True  # the store answered; the rows were the problem
                parts = split_refused(batch) if split else []
                if parts:
                    return parts
                self._file_rejected(batch, outcome)
                return True
            return self._spool_batch(batch)  # the store is unavailable
        if not self._spool_batch(batch):
            return False
        self.maybe_replay()  # keep order: older batches are waiting
        return True

    def _spool_waiting(self) -> bool:
        """Whether older batches wait in the spool; when the spool cannot be read, the insert goes ahead."""
        try:
            return self.spool.pending()
        except Exception as exc:
            logger.error("llmpulse: could not read the spool directory (%s); inserting directly", type(exc).__name__)
            return False

    def _settle(self, batch: Batch) -> None:
        """Tell the batch's source (the write-ahead log) that it is done with, once."""
        settled, batch.on_settled = batch.on_settled, None
        if settled is not None:
            try:
                settled()
            except Exception:
                logger.error("llmpulse: could not release a batch in the write-ahead log", exc_info=True)

    def _abandon(self, batch: Batch, work: deque[Batch]) -> None:
        """Shutdown with rows that neither the store nor the spool took: count them, or leave them in the log."""
        held = sum(part.count for part in work)
        with self.counters.lock:
            self.counters.stats.held = 0
        if batch.on_settled is not None:
            logger.error(
                "llmpulse: %d rows could be neither stored nor spooled before shutdown; "
                "they stay in the write-ahead log and are replayed at the next start",
                held,
            )
            return
        logger.error("llmpulse: %d rows could be neither stored nor spooled before shutdown; dropped", held)
        self.counters.drop("spool_write_failed", held)

    def _insert_with_retry(self, batch: Batch) -> bool | BaseException:
        """True when stored, False when the store is unavailable, the exception when it refused the data."""
        delays = () if self.stopping.is_set() else _RETRY_DELAYS_S
        for attempt in range(len(delays) + 1):
            try:
                started = time.perf_counter()
                self.writer.insert(batch)
                with self.counters.lock:
                    self.counters.stats.insert_seconds_total += time.perf_counter() - started
                    self.counters.stats.inserts += 1
                self.store_ok = True
                return True
            except Exception as exc:
                if rejects_data(exc):
                    return exc
                logger.warning(
                    "llmpulse: insert into %s failed (%s); will retry or spool", batch.table, type(exc).__name__
                )
                if attempt < len(delays) and self.stopping.wait(delays[attempt]):
                    break
        self.store_ok = False
        return False

    def _file_rejected(self, batch: Batch, exc: BaseException) -> None:
        """The store refused these rows as bad data: keep them under spool/dead/, count them, go on."""
        reason = str(exc)[:300]
        where = "not kept (dead-letter write failed)"
        try:
            where = self.spool.put(batch, dead=True, reason=reason)
        except Exception as put_exc:
            logger.error("llmpulse: could not keep refused rows under spool/dead/ (%s)", type(put_exc).__name__)
        logger.error(
            "llmpulse: the store refused %d rows for %s as bad data; they are in %s: %s",
            batch.count,
            batch.table,
            where,
            reason,
        )
        self.counters.drop("rejected_by_store", batch.count)
        self._sync_spool_drops()

    def _spool_batch(self, batch: Batch) -> bool:
        """Put a batch in the spool; False (logged, nothing counted yet) when the spool cannot take it."""
        try:
            self.spool.put(batch)
        except Exception as exc:
            logger.error(
                "llmpulse: could not write to the spool at %s (%s); holding the batch to try again",
                self.spool.directory,
                type(exc).__name__,
            )
            return False
        with self.counters.lock:
            self.counters.stats.spooled += batch.count
        self._sync_spool_drops()
        return True

    def _sync_spool_drops(self) -> None:
        spool = self.spool
        dropped = spool.dropped_records
        if dropped:
            spool.dropped_records = 0
            self.counters.drop("spool_full", dropped)
        evicted = spool.dead_evicted_records
        if evicted:
            spool.dead_evicted_records = 0
            with self.counters.lock:
                self.counters.stats.dead_letter_evicted += evicted

    # --- the spool -----------------------------------------------------------------------------

    def maybe_replay(self, *, force: bool = False) -> None:
        """Replay spooled batches oldest first; stop at the first failure and back off."""
        if not self.owner:
            return
        now = time.monotonic()
        if not force and now < self._next_replay:
            return
        try:
            self._replay()
        except Exception as exc:  # the spool could not be read (no file descriptors, I/O error): later
            logger.error("llmpulse: could not replay the spool (%s); will try again", type(exc).__name__)
            self._back_off_replay()

    def _replay(self) -> None:
        files = self.spool.files()
        if not files:
            return
        for path in files:
            batch = self.spool.load(path)
            if batch is None:
                continue
            try:
                self.writer.insert(batch)
            except Exception as exc:
                if rejects_data(exc):
                    self._isolate_replayed(batch)
                    self.spool.remove(path)
                    continue
                logger.warning(
                    "llmpulse: store still unavailable (%s); %d spooled batches wait", type(exc).__name__, len(files)
                )
                self.store_ok = False
                self._back_off_replay()
                return
            self.spool.remove(path)
            with self.counters.lock:
                self.counters.stats.exported += batch.count
                self.counters.stats.replayed += batch.count
        self.store_ok = True
        self._replay_backoff = 1.0
        self._next_replay = 0.0

    def _back_off_replay(self) -> None:
        self._next_replay = time.monotonic() + self._replay_backoff
        self._replay_backoff = min(self._replay_backoff * 2, _REPLAY_BACKOFF_MAX_S)

    def _isolate_replayed(self, batch: Batch) -> None:
        """A spooled batch refused as bad data: store its good rows, file the bad ones (its file is then removed)."""
        counters = self.counters
        with counters.lock:
            exported, spooled = counters.stats.exported, counters.stats.spooled
        work = deque(split_refused(batch))
        if not work:
            self._file_rejected(batch, RuntimeError("refused as bad data"))
        budget = _SPLIT_INSERT_BUDGET - len(work)
        try:
            while work:
                part = work.popleft()
                placed = self._place(part, split=budget > 0, in_order=False)
                if placed is False:  # parts stored so far are deduplicated when the file is replayed again
                    raise OSError("the spool cannot take the parts of a refused batch")
                if placed is not True:
                    work.extendleft(reversed(placed))
                    budget -= len(placed)
        finally:
            with counters.lock:  # these rows were counted as spooled once already
                counters.stats.replayed += counters.stats.exported - exported
                counters.stats.spooled = spooled


def split_refused(batch: Batch) -> list[Batch]:
    """The parts to try instead of a batch the store refused: its requests, else its two halves; [] for one row.

    Part tokens derive from the batch's own (``token:i``), so splitting the same batch again (after a
    crash, or when a spooled copy is replayed) gives the same parts with the same tokens, and parts
    stored the first time are deduplicated by the store.
    """
    if batch.count <= 1:
        return []
    data = bytes(batch.payload)
    lines = data.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != batch.count:
        return []  # not one row per line: it cannot be split safely
    if len(batch.parts) > 1 and sum(batch.parts) == batch.count:
        sizes: Sequence[int] = batch.parts
    else:
        half = batch.count // 2
        sizes = (half, batch.count - half)
    parts, start = [], 0
    for index, size in enumerate(sizes):
        if size:
            rows = b"".join(line + b"\n" for line in lines[start : start + size])
            parts.append(Batch(batch.table, batch.columns, rows, f"{batch.token}:{index}", size))
        start += size
    return parts
