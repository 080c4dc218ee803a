"""The export pipeline of one ``configure()`` (or one sidecar): the batcher, the enrichment, the sinks.

``emit`` (the app's thread) only appends to a bounded queue (``Batcher``). The export thread enriches
each batch of records into finished spans and hands them, in chunks of ``batch_size``, to every sink:
the user's ``span_exporters``, OTLP (spans and GenAI metrics) and the store (retry, then the on-disk
spool, replayed in order). The sidecar's receiver and collectors hand in rows already encoded
(``submit_rows``); they go to the store only. Nothing is dropped without being counted.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.enrich.span import EnrichContext, FinishedSpan, enrich
from llmpulse.agent.store.rows import Batch

from .batcher import Batcher
from .clickhouse_sink import ClickHouseSink
from .config import Config
from .encode import FeedbackRecord
from .sink import CallbackSink, Sink
from .stats import Stats


class Pipeline(Batcher):
    """Owns the queue, the export thread and the sinks of one ``configure()``."""

    def __init__(
        self,
        config: Config,
        *,
        span_exporters: Sequence[Callable[[Sequence[FinishedSpan]], Any]] = (),
        version: str = "0.1.0",
        after_fork: Sequence[Callable[[], None]] = (),
    ) -> None:
        super().__init__(
            max_queue_size=config.max_queue_size,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            shutdown_timeout=config.shutdown_timeout,
        )
        self.config = config
        self.sample_rate = config.sample_rate
        self.capture_content = config.capture_content
        self._rand = random.Random()
        self._fork_hooks = tuple(after_fork)  # e.g. the SDK reseeds its span ids
        self._version = version
        self._resource = {
            "service.name": config.service_name,
            "telemetry.sdk.name": "llmpulse",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": version,
            **config.resource_attributes,
        }
        prices = PriceTable.default().with_overrides(config.prices)  # overrides > vendored > litellm's list
        self._enrich_ctx = EnrichContext(
            capture_content=config.capture_content,
            redaction=Redaction(config.redact_hooks, categories=config.redact_categories),
            prices=prices,
        )
        self.store_sink: ClickHouseSink | None = None
        if config.store is not None:
            self.store_sink = ClickHouseSink(
                config.store,
                counters=self.counters,
                apply_schema=config.apply_schema,
                prices=prices,
                spool_dir=config.spool_dir,
                spool_max_bytes=config.spool_max_bytes,
                max_queue_size=config.max_queue_size,
                batch_size=config.batch_size,
                flush_interval=config.flush_interval,
                service_name=config.service_name,
                resource=self._resource,
                version=version,
            )
        self._callback_sinks = [CallbackSink(exporter) for exporter in span_exporters]
        self._spool_levels = (0, 0)  # files and records in the spool when it was last listed
        self._build_sinks()
        self._start_threads()
        self._register_hooks()

    def _build_sinks(self) -> None:
        """The sinks in the order they get each chunk: the user's exporters, OTLP, the store."""
        otlp: Sink | None = None
        if "otlp" in self.config.export and self.config.otlp_endpoint:
            from .otlp_sink import OtlpSink  # loads the OpenTelemetry SDK: only when OTLP is configured

            otlp = OtlpSink(self.config.otlp_endpoint, self._resource, self._version, self.counters)
        self._otlp = otlp
        self._sinks: list[Sink] = [*self._callback_sinks]
        if otlp is not None:
            self._sinks.append(otlp)
        if self.store_sink is not None:
            self._sinks.append(self.store_sink)

    def _start_threads(self) -> None:
        if self.store_sink is not None:
            self.store_sink.start(self._stopping)
        self._start_thread()

    def _after_fork(self) -> None:
        """In a forked child: fresh queue, counters and threads; an embedded store is the parent's (see
        ``ClickHouseSink.after_fork``), and so are the parent's OTLP connections."""
        for hook in self._fork_hooks:
            hook()
        if self.store_sink is not None:
            self.store_sink.after_fork()
        self._reset()
        self._rand = random.Random()
        self._spool_levels = (0, 0)
        try:
            self._build_sinks()
        except Exception:
            logger.warning("llmpulse: OTLP export could not be set up after fork", exc_info=True)
            self._otlp = None
            self._sinks = [*self._callback_sinks, *([self.store_sink] if self.store_sink is not None else [])]
        self._start_threads()

    def open_store(self) -> None:
        """Connect and apply the schema now (configure() calls this for embedded stores)."""
        if self.store_sink is not None:
            self.store_sink.open()

    @property
    def store_ok(self) -> bool | None:
        """Whether the store took the latest insert or replay; None before the first (or without a store)."""
        return None if self.store_sink is None else self.store_sink.store_ok

    # --- hot path (the app's threads) ----------------------------------------------------------

    def sample(self) -> bool:
        return self._rand.random() < self.sample_rate

    # ``emit`` is Batcher.emit: the record goes straight to the bounded queue.

    # --- rows already encoded (the sidecar) ----------------------------------------------------

    def has_room(self, count: int, size: int = 0) -> bool:
        """Whether ``submit_rows`` would take ``count`` more rows of ``size`` bytes now (the durable sink asks
        before logging)."""
        if self._stopped or self._stopping.is_set() or self.store_sink is None:
            return False
        return self.store_sink.intake.has_room(count, size)

    def submit_rows(self, batches: Sequence[Batch], *, force: bool = False) -> bool:
        """Queue rows already encoded per table (the sidecar's receiver and collectors) for the store.

        All or nothing: returns False, counting nothing as dropped, when the queue is full or the
        pipeline has stopped; the caller still holds the data and tells its client to retry (HTTP 503).
        Rows bigger than the whole queue are still taken when the queue is empty, so they are never
        refused forever. ``force`` skips the queue cap: rows already acknowledged from the write-ahead
        log (``has_room`` was asked before they were logged) must not be refused for room.
        """
        if self._pid != os.getpid():
            self._after_fork()
        if self._stopped or self._stopping.is_set() or self.store_sink is None:
            return False
        intake = self.store_sink.intake
        if not intake.submit(batches, force=force):
            return False
        if intake.rows >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def count_drop(self, reason: str, count: int) -> None:
        """Count records lost outside the pipeline (e.g. a collector tick refused by a full queue)."""
        self.counters.drop(reason, count)

    # --- the export thread ---------------------------------------------------------------------

    def _export(self, items: list[Any]) -> None:
        """Enrich in chunks of ``batch_size`` (what each sink gets); the store makes one insert of them all."""
        feedback: list[FeedbackRecord] = []
        store = self.store_sink
        otlp = self._otlp
        sinks = self._sinks
        batch_size = self._batch_size
        for start in range(0, len(items), batch_size):
            spans: list[FinishedSpan] = []
            for item in items[start : start + batch_size]:
                if isinstance(item, FeedbackRecord):
                    feedback.append(item)
                    continue
                try:
                    spans.append(enrich(item, self._enrich_ctx))
                except Exception:
                    logger.error("llmpulse: could not build a span from a record; it is dropped", exc_info=True)
                    self.counters.drop("enrich_error", 1)
            if not spans:
                continue
            delivered = True
            for sink in sinks:
                if not sink.export(spans) and sink is otlp:
                    delivered = False
            if store is None:  # without a store, a span is done once OTLP had it
                if delivered:
                    with self.counters.lock:
                        self.counters.stats.exported += len(spans)
                else:
                    self.counters.drop("otlp_export_failed", len(spans))
        with self.counters.lock:
            self.counters.stats.unknown_model_cost = self._enrich_ctx.unknown_model_cost
            self.counters.stats.streams_without_usage = self._enrich_ctx.streams_without_usage
        if feedback:
            if store is None:
                logger.error("llmpulse: feedback needs a ClickHouse store; %d records dropped", len(feedback))
                self.counters.drop("feedback_without_store", len(feedback))
            else:
                store.add_feedback(feedback)
        for sink in sinks:
            sink.end_batch()

    def _end_pass(self) -> None:
        if self.store_sink is not None:
            self.store_sink.drain_intake()

    def _settle(self, stopping: bool) -> None:
        if self.store_sink is not None:
            self.store_sink.settle(stopping)

    # --- control -------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Export everything queued now; True when it all reached the store (nothing left spooled)."""
        if self._stopped or not self._thread.is_alive():
            return not self._queue
        done = self._flush_pass(timeout)
        # the pass that answered the flush drained everything queued before this call
        for sink in self._sinks:
            if not sink.flush(timeout):
                done = False
        return done

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop accepting records, export (or spool) what is queued within the deadline, stop the threads."""
        if self._stopped:
            return True
        finished = super().shutdown(timeout)
        for sink in self._sinks:
            sink.shutdown()
        return finished

    def snapshot(self) -> Stats:
        """A copy of the counters, with queue and spool levels filled in."""
        stats = self.counters.snapshot()
        intake = self.store_sink.intake if self.store_sink is not None else None
        stats.queue_depth = len(self._queue) + (intake.rows if intake is not None else 0)
        stats.enqueued = self._popped + (intake.popped if intake is not None else 0) + stats.queue_depth
        if self.store_sink is not None:
            try:
                self._spool_levels = self.store_sink.spool_levels()
            except OSError:  # the spool cannot be listed now (no file descriptors): its last known levels
                pass
            stats.spool_files, stats.spool_records = self._spool_levels
        return stats
