"""The sidecar's periodic work: collector ticks and scheduled analyses, each on a worker thread.

A tick's rows become store batches and go to the pipeline all at once; when its queue is full the tick
is dropped and counted (``<collector>_queue_full``). Every tick's cost, rows and failure are recorded
in ``TickStats`` for the sidecar's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from llmpulse.agent._log import logger
from llmpulse.agent.export.pipeline import Pipeline
from llmpulse.agent.store.dsn import StoreTarget
from llmpulse.agent.store.rows import rows_to_batch
from llmpulse.collectors.base import Collector, Rows


@dataclass
class TickStats:
    """Cost of the collectors' ticks, per collector."""

    seconds_total: dict[str, float] = field(default_factory=dict)
    ticks: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def record(self, name: str, seconds: float, rows: int, error: bool = False) -> None:
        self.seconds_total[name] = self.seconds_total.get(name, 0.0) + seconds
        self.ticks[name] = self.ticks.get(name, 0) + 1
        self.rows[name] = self.rows.get(name, 0) + rows
        if error:
            self.errors[name] = self.errors.get(name, 0) + 1


class Schedule:
    """Runs collectors and the analyzers on their intervals; their rows go to ``pipeline``."""

    def __init__(self, pipeline: Pipeline, ticks: TickStats) -> None:
        self.pipeline = pipeline
        self.ticks = ticks

    async def collect(self, name: str, interval: float, source: Collector) -> None:
        """Call ``source.collect`` every ``interval`` seconds on a worker thread; failures are logged and counted.

        A source that handles its own failures (the scraper returns no rows and counts them in
        ``failed_ticks``) is counted as failed for that tick too.
        """
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            failed_before = source.failed_ticks
            count, failed = 0, False
            try:
                rows = await loop.run_in_executor(None, source.collect, datetime.now(timezone.utc))
                count = self._submit(name, rows)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed = True
                logger.error("llmpulse agent: %s collector tick failed", name, exc_info=True)
            failed = failed or source.failed_ticks > failed_before
            self.ticks.record(name, time.perf_counter() - started, count, failed)
            next_tick += interval
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))

    def _submit(self, name: str, rows: Rows) -> int:
        batches = [rows_to_batch(table, table_rows) for table, table_rows in rows.items() if table_rows]
        count = sum(b.count for b in batches)
        if batches and not self.pipeline.submit_rows(batches):
            self.pipeline.count_drop(f"{name.split(':', maxsplit=1)[0]}_queue_full", count)
            return 0
        return count

    async def analyze(self, every: float, store: StoreTarget, window: str, reference: str) -> None:
        """Run all registered analyzers every ``every`` seconds; results and alerts go to the store."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            started = time.perf_counter()
            failed = False
            try:
                await loop.run_in_executor(None, _run_analyzers, store, window, reference)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed = True
                logger.error("llmpulse agent: scheduled analysis failed", exc_info=True)
            self.ticks.record("analyzers", time.perf_counter() - started, 0, failed)


def _run_analyzers(store: StoreTarget, window: str, reference: str) -> None:
    """All registered analyzers on the configured windows, with a client of their own (the writer's stays
    with the writer thread)."""
    from llmpulse.analyzers.framework.runner import run_all

    client = store.client()
    try:
        results = run_all(client, store.database, window, reference)
    finally:
        client.close()
    alerts = sum(1 for result in results if result.alert)
    logger.warning("llmpulse agent: scheduled analysis wrote %d results, %d alerting", len(results), alerts)
