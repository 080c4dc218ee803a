"""The export pipeline: a bounded queue filled by the hot path, drained by one background thread.

``emit`` (the app's thread) only appends to a bounded deque and maybe wakes the worker. The worker
enriches records, batches them by size and time, and hands each batch to the sinks: ClickHouse
(retry with backoff, then the on-disk spool, replayed in order when the store is back) and,
when configured, OTLP spans and GenAI metrics. Nothing is dropped without being counted.
"""

from __future__ import annotations

import atexit
import os
import queue
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._log import logger
from .clickhouse import (
    TRACE_ROW_COLUMNS,
    ClickHouseWriter,
    FeedbackRecord,
    RowBuffer,
    add_span_rows,
    feedback_to_batch,
    new_token,
    rejects_data,
)
from .config import Config
from .enrich import EnrichContext, FinishedSpan, enrich
from .prices import PriceTable
from .redaction import Redaction
from .schema import SchemaOptions
from .spans import SpanRecord, reseed_after_fork
from .spool import Batch, Spool
from .wal import WalChunk

_RETRY_DELAYS_S = (0.05, 0.25, 1.0)  # then the batch goes to the spool
_REPLAY_BACKOFF_MAX_S = 30.0
_REPLAY: Any = object()  # a message to the writer thread: try the spool now
_MAX_INSERT_BATCHES = 5  # under backlog one insert takes up to this many batches' worth of records
_SPLIT_INSERT_BUDGET = 256  # inserts spent isolating the bad rows of one refused batch; past it the rest is filed
_HOLD_BACKOFF_MIN_S = 0.5  # a batch neither the store nor the spool took is tried again after this, doubling
_HOLD_BACKOFF_MAX_S = 30.0
# Encoded rows (the sidecar's) are bounded in bytes as well as rows: a few huge OTLP bodies must not
# hold gigabytes between the receiver and the store. One insert joins at most this many bytes of them.
_MAX_QUEUE_BYTES = 64 * 1024 * 1024
_MAX_INSERT_BYTES = 16 * 1024 * 1024


@dataclass
class Stats:
    """Counters of the pipeline; every record ends up in exactly one of exported / spooled-pending / dropped."""

    enqueued: int = 0
    exported: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    spool_files: int = 0
    spool_records: int = 0
    unknown_model_cost: int = 0
    otlp_exported: int = 0
    otlp_failed: int = 0
    insert_seconds_total: float = 0.0
    inserts: int = 0
    held: int = 0  # rows the writer holds because neither the store nor the spool could take them
    dead_letter_evicted: int = 0  # refused rows removed from spool/dead/ (oldest first) to keep it under the cap


class Pipeline:
    """Owns the queue, the worker thread and the sinks of one ``configure()``."""

    def __init__(
        self,
        config: Config,
        *,
        span_exporters: Sequence[Callable[[Sequence[FinishedSpan]], Any]] = (),
        version: str = "0.1.0",
    ) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        self.capture_content = config.capture_content
        self._span_exporters = list(span_exporters)
        self._version = version
        self._resource = {
            "service.name": config.service_name,
            "telemetry.sdk.name": "llmpulse",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": version,
            **config.resource_attributes,
        }
        prices = PriceTable.vendored().with_overrides(config.prices) if config.prices else PriceTable.vendored()
        self._enrich_ctx = EnrichContext(
            capture_content=config.capture_content,
            redaction=Redaction(config.redact_hooks, categories=config.redact_categories),
            prices=prices,
        )
        self._writer: ClickHouseWriter | None = None
        self._spool: Spool | None = None
        if config.store is not None:
            self._writer = ClickHouseWriter(
                config.store,
                SchemaOptions(database=config.store.database),
                apply_schema=config.apply_schema,
                prices=prices,
            )
            self._spool = Spool(config.spool_dir, config.spool_max_bytes)
        self._store_owner = True
        self._otlp: Any = None
        self._metrics: Any = None
        self._init_runtime()
        self._setup_otlp()
        if hasattr(os, "register_at_fork"):
            weak_reinit = weakref.WeakMethod(self._after_fork)

            def _after_in_child() -> None:
                reinit = weak_reinit()
                if reinit is not None:
                    reinit()

            os.register_at_fork(after_in_child=_after_in_child)
        atexit.register(self.shutdown)

    # --- set-up ------------------------------------------------------------------------------------

    def _init_runtime(self) -> None:
        self._pid = os.getpid()
        self._queue: deque[Any] = deque()
        self._encoded: deque[Any] = deque()  # ready rows from the sidecar (EncodedRows), bounded by row count
        self._encoded_rows = 0
        self._encoded_bytes = 0
        self._max_queue = self.config.max_queue_size
        self._batch_size = self.config.batch_size
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()  # guards counters touched off the worker thread
        self._flush_waiters: list[threading.Event] = []
        self._popped = 0
        self.stats = Stats()
        self._next_replay = 0.0
        self._replay_backoff = 1.0
        self._spool_levels = (0, 0)  # files and records in the spool when it was last listed
        self.store_ok: bool | None = None  # outcome of the latest insert or replay; None before the first
        self._rand = random.Random()
        # Enrichment (Python) and inserts (mostly in the engine or on the network) overlap: the export
        # thread builds batches, the writer thread stores them; at most two batches wait in between.
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._max_insert_rows = _MAX_INSERT_BATCHES * self._batch_size
        self._writer_thread = threading.Thread(target=self._run_writer, name="llmpulse-writer", daemon=True)
        self._thread = threading.Thread(target=self._run, name="llmpulse-export", daemon=True)
        self._writer_thread.start()
        self._thread.start()

    def _setup_otlp(self) -> None:
        if "otlp" not in self.config.export or not self.config.otlp_endpoint:
            return
        from opentelemetry.sdk.resources import Resource

        from .otlp import GenAIMetrics, OtlpSpanSink

        resource = Resource.create(self._resource)
        self._otlp = OtlpSpanSink(self.config.otlp_endpoint, resource, self._version)
        self._metrics = GenAIMetrics(self.config.otlp_endpoint, resource)

    def _after_fork(self) -> None:
        """In a forked child: fresh queue, locks and thread; the parent's queued records are the parent's.

        An embedded (chDB) store can be open in one process only, so a child that did not open it
        writes its batches to the spool, and the owning parent replays them into the store.
        """
        reseed_after_fork()
        if self._writer is not None and self.config.store is not None and self.config.store.embedded:
            self._store_owner = False
        elif self._writer is not None:
            self._writer._client = None  # never share a parent's sockets
        self._init_runtime()
        try:
            self._setup_otlp()
        except Exception:
            logger.warning("llmpulse: OTLP export could not be set up after fork", exc_info=True)

    def open_store(self) -> None:
        """Connect and apply the schema now (configure() calls this for embedded stores)."""
        if self._writer is not None:
            self._writer.connect()
            self.store_ok = True

    # --- hot path ----------------------------------------------------------------------------------

    def sample(self) -> bool:
        return self._rand.random() < self.sample_rate

    def emit(self, item: SpanRecord | FeedbackRecord) -> None:
        """Enqueue without blocking; when the queue is full the record is dropped and counted."""
        if self._pid != os.getpid():
            self._after_fork()
        queue = self._queue
        if len(queue) >= self._max_queue or self._stopped:
            self._count_drop("queue_full" if not self._stopped else "after_shutdown", 1)
            return
        queue.append(item)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def has_room(self, count: int, size: int = 0) -> bool:
        """Whether ``submit_rows`` would take ``count`` more rows of ``size`` bytes now (the durable sink asks
        before logging)."""
        if self._stopped or self._stopping.is_set() or self._writer is None:
            return False
        with self._lock:
            return self._fits(count, size)

    def _fits(self, count: int, size: int) -> bool:
        """Room for more encoded rows: under the row cap and the byte cap, or an empty queue (never refused forever)."""
        if not self._encoded_rows:
            return True
        return self._encoded_rows + count <= self._max_queue and self._encoded_bytes + size <= _MAX_QUEUE_BYTES

    def submit_rows(self, batches: Sequence[Any], *, force: bool = False) -> bool:
        """Queue rows already encoded per table (``EncodedRows`` or ``Batch``: the sidecar's receiver and collectors).

        All or nothing: returns False, counting nothing as dropped, when the queue is full or the
        pipeline has stopped; the caller still holds the data and tells its client to retry (HTTP 503).
        Rows bigger than the whole queue are still taken when the queue is empty, so they are never
        refused forever. ``force`` skips the queue cap: rows already acknowledged from the write-ahead
        log (``has_room`` was asked before they were logged) must not be refused for room.
        """
        if self._pid != os.getpid():
            self._after_fork()
        if self._stopped or self._stopping.is_set() or self._writer is None:
            return False
        count = sum(rows.count for rows in batches)
        size = sum(len(rows.payload) for rows in batches)
        with self._lock:
            if not force and not self._fits(count, size):
                return False
            self._encoded.extend(rows for rows in batches if rows.count)
            self._encoded_rows += count
            self._encoded_bytes += size
            wake = self._encoded_rows >= self._batch_size
        if wake and not self._wake.is_set():
            self._wake.set()
        return True

    # --- worker ------------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.config.flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            stopping = self._stopping.is_set()
            with self._lock:  # only flushes asked for before this pass are answered by it
                waiters, self._flush_waiters = self._flush_waiters, []
            try:
                self._drain(everything=bool(waiters) or stopping or len(self._queue) >= self._batch_size)
                self._drain_encoded()
            except Exception:
                logger.error("llmpulse: export worker error", exc_info=True)
            if waiters or stopping:
                self._batches.put(_REPLAY)  # the writer tries the spool once more, then we wait for it
                self._batches.join()
            for waiter in waiters:
                waiter.set()
            if stopping:
                self._batches.put(None)
                self._writer_thread.join()
                return

    def _run_writer(self) -> None:
        """Store batches in order; while idle, replay the spool when its back-off has passed."""
        while True:
            try:
                item = self._batches.get(timeout=self.config.flush_interval)
            except queue.Empty:
                self._safely(self._maybe_replay)
                continue
            try:
                if item is None:
                    return
                if item is _REPLAY:
                    self._safely(self._maybe_replay, force=True)
                else:
                    self._safely(self._write, item)
            finally:
                self._batches.task_done()

    def _safely(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            logger.error("llmpulse: export writer error", exc_info=True)

    def _drain(self, *, everything: bool) -> None:
        """Export the queue in batches; on a timer tick export what is there, at least one batch.

        A batch holds ``batch_size`` records, or up to ``_max_insert_rows`` when that many already wait:
        under backlog, one larger insert instead of several small ones. Each insert makes a part in every
        table and view it reaches, so the engine spends less per row, and merges less later.
        """
        first = True
        records = self._queue
        while records and (everything or first):
            first = False
            waiting = len(records)
            take = self._max_insert_rows if waiting >= self._max_insert_rows else min(self._batch_size, waiting)
            popleft = records.popleft
            items = [popleft() for _ in range(take)]
            self._popped += take
            self._export(items)

    def _drain_encoded(self) -> None:
        """Join queued encoded rows into batches of about ``batch_size`` rows per table.

        Chunks of different tables arrive interleaved (GPU samples and processes, traces and metrics);
        grouping them per table keeps inserts few and large. Order within a table is kept. Chunks from
        the write-ahead log are grouped apart and sealed in it first (token and members written before
        the insert), so a replay after a crash rebuilds the same batch with the same token; a batch
        replayed from the log (it has ``on_settled``) goes on unchanged.
        """
        with self._lock:
            chunks = list(self._encoded)
            self._encoded.clear()
            taken = self._encoded_rows
            self._encoded_rows = 0
            self._encoded_bytes = 0
        if not chunks:
            return
        self._popped += taken
        by_table: dict[tuple[str, Any], list[Any]] = {}
        for chunk in chunks:
            if isinstance(chunk, Batch) and chunk.on_settled is not None:
                self._batches.put(chunk)
                continue
            log = chunk.log if isinstance(chunk, WalChunk) else None
            by_table.setdefault((chunk.table, log), []).append(chunk)
        for (_table, log), table_chunks in by_table.items():
            start = 0
            while start < len(table_chunks):
                end, count, size = start + 1, table_chunks[start].count, len(table_chunks[start].payload)
                while (
                    end < len(table_chunks)
                    and count + table_chunks[end].count <= self._batch_size
                    and size + len(table_chunks[end].payload) <= _MAX_INSERT_BYTES
                ):
                    count += table_chunks[end].count
                    size += len(table_chunks[end].payload)
                    end += 1
                group = table_chunks[start:end]
                start = end
                payload = b"".join(chunk.payload for chunk in group)
                parts = tuple(chunk.count for chunk in group)
                batch = Batch(group[0].table, group[0].columns, payload, new_token(), count, parts)
                if log is not None and not self._seal(log, group, batch):
                    continue
                self._batches.put(batch)

    def _seal(self, log: Any, group: list[Any], batch: Batch) -> bool:
        """Give a batch of logged chunks its recorded token; when the log cannot record it, queue them again."""
        seqs = [chunk.seq for chunk in group]
        try:
            batch.token = log.seal(seqs)
        except Exception:
            logger.error("llmpulse: could not seal a batch in the write-ahead log; trying again", exc_info=True)
            with self._lock:
                self._encoded.extend(group)
                self._encoded_rows += batch.count
                self._encoded_bytes += len(batch.payload)
                self._popped -= batch.count
            return False
        batch.on_settled = log.releaser(seqs)
        return True

    def _export(self, items: list[Any]) -> None:
        """Enrich in chunks of ``batch_size`` (what the side sinks get), encode all rows into one batch."""
        rows = RowBuffer()
        feedback: list[FeedbackRecord] = []
        service = self.config.service_name
        for start in range(0, len(items), self._batch_size):
            spans: list[FinishedSpan] = []
            for item in items[start : start + self._batch_size]:
                if isinstance(item, FeedbackRecord):
                    feedback.append(item)
                    continue
                try:
                    spans.append(enrich(item, self._enrich_ctx))
                except Exception:
                    logger.error("llmpulse: could not build a span from a record; it is dropped", exc_info=True)
                    self._count_drop("enrich_error", 1)
            otlp_ok = self._to_side_sinks(spans) if spans else True
            if self._writer is None:
                self._count_exported_elsewhere(spans if otlp_ok else [], [])
            elif spans:
                add_span_rows(rows, spans, service_name=service, resource=self._resource, scope_version=self._version)
        with self._lock:
            self.stats.unknown_model_cost = self._enrich_ctx.unknown_model_cost
        if self._writer is None:
            self._count_exported_elsewhere([], feedback)
            return
        if rows.count:
            self._batches.put(Batch("otel_traces", TRACE_ROW_COLUMNS, rows.data, new_token(), rows.count))
        if feedback:
            self._batches.put(feedback_to_batch(feedback, service_name=service))

    def _count_exported_elsewhere(self, spans: list[FinishedSpan], feedback: list[FeedbackRecord]) -> None:
        """Without a ClickHouse sink, a record is done once the OTLP sink had it; feedback needs a store."""
        with self._lock:
            self.stats.exported += len(spans)
        if feedback:
            logger.error("llmpulse: feedback needs a ClickHouse store; %d records dropped", len(feedback))
            self._count_drop("feedback_without_store", len(feedback))

    def _to_side_sinks(self, spans: list[FinishedSpan]) -> bool:
        """Custom exporters, metrics and OTLP; returns False when the OTLP export failed."""
        for exporter in self._span_exporters:
            try:
                exporter(spans)
            except Exception:
                logger.error("llmpulse: span exporter %r failed", exporter, exc_info=True)
        if self._metrics is not None:
            for span in spans:
                try:
                    self._metrics.record(span)
                except Exception:
                    logger.error("llmpulse: recording GenAI metrics failed", exc_info=True)
        if self._otlp is not None:
            try:
                ok = self._otlp.export(spans)
            except Exception:
                logger.error("llmpulse: OTLP span export failed", exc_info=True)
                ok = False
            with self._lock:
                if ok:
                    self.stats.otlp_exported += len(spans)
                else:
                    self.stats.otlp_failed += len(spans)
            if not ok and self._writer is None:
                self._count_drop("otlp_export_failed", len(spans))
            return ok
        return True

    def _write(self, batch: Batch) -> None:
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
            with self._lock:
                self.stats.held = sum(p.count for p in work)
            if self._stopping.is_set():
                self._abandon(batch, work)
                return
            self._stopping.wait(delay)
            delay = min(delay * 2, _HOLD_BACKOFF_MAX_S)
        with self._lock:
            self.stats.held = 0
        self._settle(batch)

    def _place(self, batch: Batch, *, split: bool, in_order: bool = True) -> bool | list[Batch]:
        """One try: True when stored, spooled or filed as dead; False when nothing took it; the parts of a
        refused batch to try instead. ``in_order``: go to the spool while older batches wait there."""
        if self._store_owner and not (in_order and self._spool_waiting()):
            outcome = self._insert_with_retry(batch)
            if outcome is True:
                with self._lock:
                    self.stats.exported += batch.count
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
        self._maybe_replay()  # keep order: older batches are waiting
        return True

    def _spool_waiting(self) -> bool:
        """Whether older batches wait in the spool; when the spool cannot be read, the insert goes ahead."""
        assert self._spool is not None
        try:
            return self._spool.pending()
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
        with self._lock:
            self.stats.held = 0
        if batch.on_settled is not None:
            logger.error(
                "llmpulse: %d rows could be neither stored nor spooled before shutdown; "
                "they stay in the write-ahead log and are replayed at the next start",
                held,
            )
            return
        logger.error("llmpulse: %d rows could be neither stored nor spooled before shutdown; dropped", held)
        self._count_drop("spool_write_failed", held)

    def _insert_with_retry(self, batch: Batch) -> bool | BaseException:
        """True when stored, False when the store is unavailable, the exception when it refused the data."""
        assert self._writer is not None
        delays = () if self._stopping.is_set() else _RETRY_DELAYS_S
        for attempt in range(len(delays) + 1):
            try:
                started = time.perf_counter()
                self._writer.insert(batch)
                with self._lock:
                    self.stats.insert_seconds_total += time.perf_counter() - started
                    self.stats.inserts += 1
                self.store_ok = True
                return True
            except Exception as exc:
                if rejects_data(exc):
                    return exc
                logger.warning(
                    "llmpulse: insert into %s failed (%s); will retry or spool", batch.table, type(exc).__name__
                )
                if attempt < len(delays) and self._stopping.wait(delays[attempt]):
                    break
        self.store_ok = False
        return False

    def _file_rejected(self, batch: Batch, exc: BaseException) -> None:
        """The store refused these rows as bad data: keep them under spool/dead/, count them, go on."""
        assert self._spool is not None
        reason = str(exc)[:300]
        where = "not kept (dead-letter write failed)"
        try:
            where = self._spool.put(batch, dead=True, reason=reason)
        except Exception as put_exc:
            logger.error("llmpulse: could not keep refused rows under spool/dead/ (%s)", type(put_exc).__name__)
        logger.error(
            "llmpulse: the store refused %d rows for %s as bad data; they are in %s: %s",
            batch.count,
            batch.table,
            where,
            reason,
        )
        self._count_drop("rejected_by_store", batch.count)
        self._sync_spool_drops()

    def _spool_batch(self, batch: Batch) -> bool:
        """Put a batch in the spool; False (logged, nothing counted yet) when the spool cannot take it."""
        assert self._spool is not None
        try:
            self._spool.put(batch)
        except Exception as exc:
            logger.error(
                "llmpulse: could not write to the spool at %s (%s); holding the batch to try again",
                self._spool.directory,
                type(exc).__name__,
            )
            return False
        with self._lock:
            self.stats.spooled += batch.count
        self._sync_spool_drops()
        return True

    def _sync_spool_drops(self) -> None:
        assert self._spool is not None
        dropped = self._spool.dropped_records
        if dropped:
            self._spool.dropped_records = 0
            self._count_drop("spool_full", dropped)
        evicted = self._spool.dead_evicted_records
        if evicted:
            self._spool.dead_evicted_records = 0
            with self._lock:
                self.stats.dead_letter_evicted += evicted

    def _maybe_replay(self, *, force: bool = False) -> None:
        """Replay spooled batches oldest first; stop at the first failure and back off."""
        if self._spool is None or self._writer is None or not self._store_owner:
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
        assert self._spool is not None and self._writer is not None
        files = self._spool.files()
        if not files:
            return
        for path in files:
            batch = self._spool.load(path)
            if batch is None:
                continue
            try:
                self._writer.insert(batch)
            except Exception as exc:
                if rejects_data(exc):
                    self._isolate_replayed(batch)
                    self._spool.remove(path)
                    continue
                logger.warning(
                    "llmpulse: store still unavailable (%s); %d spooled batches wait", type(exc).__name__, len(files)
                )
                self.store_ok = False
                self._back_off_replay()
                return
            self._spool.remove(path)
            with self._lock:
                self.stats.exported += batch.count
                self.stats.replayed += batch.count
        self.store_ok = True
        self._replay_backoff = 1.0
        self._next_replay = 0.0

    def _back_off_replay(self) -> None:
        self._next_replay = time.monotonic() + self._replay_backoff
        self._replay_backoff = min(self._replay_backoff * 2, _REPLAY_BACKOFF_MAX_S)

    def _isolate_replayed(self, batch: Batch) -> None:
        """A spooled batch refused as bad data: store its good rows, file the bad ones (its file is then removed)."""
        with self._lock:
            exported, spooled = self.stats.exported, self.stats.spooled
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
            with self._lock:  # these rows were counted as spooled once already
                self.stats.replayed += self.stats.exported - exported
                self.stats.spooled = spooled

    def count_drop(self, reason: str, count: int) -> None:
        """Count records lost outside the pipeline (e.g. a collector tick refused by a full queue)."""
        self._count_drop(reason, count)

    def _count_drop(self, reason: str, count: int) -> None:
        with self._lock:
            self.stats.dropped += count
            self.stats.dropped_by_reason[reason] = self.stats.dropped_by_reason.get(reason, 0) + count

    # --- control -----------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Export everything queued now; True when it all reached the store (nothing left spooled)."""
        if self._stopped or not self._thread.is_alive():
            return not self._queue
        waiter = threading.Event()
        with self._lock:
            self._flush_waiters.append(waiter)
        self._wake.set()
        done = waiter.wait(timeout)
        if self._metrics is not None:
            try:
                self._metrics.flush(timeout)
            except Exception:
                logger.warning("llmpulse: metric flush failed", exc_info=True)
        # the pass that answered the waiter drained everything queued before this call
        return done and (self._spool is None or not self._spool.pending())

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop accepting records, export (or spool) what is queued within the deadline, stop the thread."""
        if self._stopped:
            return True
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        atexit.unregister(self.shutdown)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._stopped = True
        finished = not self._thread.is_alive()
        if not finished:
            logger.error(
                "llmpulse: shutdown deadline of %.1fs passed with %d records queued", timeout, len(self._queue)
            )
        for closer in (self._otlp, self._metrics):
            if closer is not None:
                try:
                    closer.shutdown()
                except Exception:
                    logger.warning("llmpulse: OTLP shutdown failed", exc_info=True)
        if self._writer is not None and finished and self._store_owner:
            self._writer.close()  # a forked child must not touch the parent's embedded engine
        return finished

    def snapshot(self) -> Stats:
        """A copy of the counters, with queue and spool levels filled in."""
        with self._lock:
            stats = Stats(**{**self.stats.__dict__, "dropped_by_reason": dict(self.stats.dropped_by_reason)})
        stats.queue_depth = len(self._queue) + self._encoded_rows
        stats.enqueued = self._popped + stats.queue_depth
        if self._spool is not None:
            try:
                files = self._spool.files()
                self._spool_levels = (len(files), self._spool.pending_records())
            except OSError:  # the spool cannot be listed now (no file descriptors): its last known levels
                pass
            stats.spool_files, stats.spool_records = self._spool_levels
        return stats


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
