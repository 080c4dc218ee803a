"""The ClickHouse sink: span and feedback rows, and the sidecar's ready rows, written in order by one thread.

Enrichment (Python, on the export thread) and inserts (mostly in the engine or on the network, on the
writer thread) overlap: the export thread encodes a batch's rows and queues it; the writer thread stores
batches in order through ``Delivery`` (retry, spool, ordered replay). At most two batches wait in
between, so a slow store backs up into the pipeline's bounded queue instead of into memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.store.dsn import StoreTarget
from llmpulse.agent.store.rows import RowBuffer
from llmpulse.agent.store.schema.model import SchemaOptions
from llmpulse.agent.store.writer import ClickHouseWriter, PriceList

from .delivery import Delivery
from .encode import FeedbackRecord, add_span_rows, feedback_to_batch, span_batch
from .intake import RowIntake
from .spool import Spool
from .stats import Counters

_REPLAY: Any = object()  # a message to the writer thread: try the spool now


class ClickHouseSink:
    """The ``Sink`` of the store; it also takes feedback records and the sidecar's encoded rows."""

    def __init__(
        self,
        target: StoreTarget,
        *,
        counters: Counters,
        apply_schema: bool,
        prices: PriceList | None,
        spool_dir: str,
        spool_max_bytes: int,
        max_queue_size: int,
        batch_size: int,
        flush_interval: float,
        service_name: str,
        resource: Mapping[str, str],
        version: str,
    ) -> None:
        self.target = target
        self.writer = ClickHouseWriter(
            target, SchemaOptions(database=target.database), apply_schema=apply_schema, prices=prices
        )
        self.spool = Spool(spool_dir, spool_max_bytes)
        self.delivery = Delivery(self.writer, self.spool, counters)
        self.intake = RowIntake(max_rows=max_queue_size, batch_size=batch_size)
        self._flush_interval = flush_interval
        self._service_name = service_name
        self._resource = resource
        self._version = version
        self._rows = RowBuffer()
        self._feedback: list[FeedbackRecord] = []

    def start(self, stopping: threading.Event) -> None:
        """Start the writer thread (again, in a forked child); ``stopping`` is the pipeline's stop event."""
        self.delivery.restart(stopping)
        self._rows = RowBuffer()
        self._feedback = []
        self._batches: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="llmpulse-writer", daemon=True)
        self._thread.start()

    def after_fork(self) -> None:
        """In a forked child: an embedded store can be open in one process only, so the child only spools
        (the owning parent replays its batches); a server's connection is the parent's, so it is dropped."""
        if self.target.embedded:
            self.delivery.owner = False
        else:
            self.writer.forget()

    def open(self) -> None:
        """Connect and apply the schema now (``configure()`` does this for embedded stores)."""
        self.writer.connect()
        self.delivery.store_ok = True

    @property
    def store_ok(self) -> bool | None:
        return self.delivery.store_ok

    # --- the Sink protocol (export thread) ----------------------------------------------------

    def export(self, spans: Sequence[FinishedSpan]) -> bool:
        add_span_rows(
            self._rows, spans, service_name=self._service_name, resource=self._resource, scope_version=self._version
        )
        return True

    def add_feedback(self, records: list[FeedbackRecord]) -> None:
        self._feedback.extend(records)

    def end_batch(self) -> None:
        """Queue this batch's span rows as one insert, then its feedback."""
        rows, self._rows = self._rows, RowBuffer()
        if rows.count:
            self._batches.put(span_batch(rows))
        if self._feedback:
            feedback, self._feedback = self._feedback, []
            self._batches.put(feedback_to_batch(feedback, service_name=self._service_name))

    def drain_intake(self) -> None:
        """Queue the sidecar's rows that wait in the intake, joined per table."""
        self.intake.drain(self._batches.put)

    def settle(self, stopping: bool) -> None:
        """Wait until the writer stored or spooled every queued batch and tried the spool once more;
        when ``stopping``, stop the writer thread too."""
        self._batches.put(_REPLAY)
        self._batches.join()
        if stopping:
            self._batches.put(None)
            self._thread.join()

    def flush(self, timeout: float) -> bool:
        """True when nothing waits in the spool (the flushing pass already settled the writer)."""
        return not self.spool.pending()

    def shutdown(self) -> None:
        """Close the client once the writer thread has ended (a forked child never touches the parent's engine)."""
        if not self._thread.is_alive() and self.delivery.owner:
            self.writer.close()

    def spool_levels(self) -> tuple[int, int]:
        """Files and records in the spool now; raises OSError when it cannot be listed."""
        files = self.spool.files()
        return len(files), self.spool.pending_records()

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        """Store batches in order; while idle, replay the spool when its back-off has passed."""
        delivery = self.delivery
        while True:
            try:
                item = self._batches.get(timeout=self._flush_interval)
            except queue.Empty:
                _safely(delivery.maybe_replay)
                continue
            try:
                if item is None:
                    return
                if item is _REPLAY:
                    _safely(delivery.maybe_replay, force=True)
                else:
                    _safely(delivery.write, item)
            finally:
                self._batches.task_done()


def _safely(method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        method(*args, **kwargs)
    except Exception:
        logger.error("llmpulse: export writer error", exc_info=True)
