"""The receiver's durable sink: a request is answered 200 only once its rows are in the write-ahead log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.store.rows import Batch

from .wal import WalClosed, WriteAheadLog, logged_rows


class DurableSink:
    """The receiver's sink when ``durable`` is on: 200 only once the request is in the log.

    Checks room first (pipeline queue and log cap) so a 503 costs no write; hands the rows to the
    pipeline from the commit callback, so a client that disconnects while waiting cannot leave a
    logged request behind unqueued.
    """

    def __init__(self, log: WriteAheadLog | None, pipeline: Any) -> None:
        self.log = log  # attached once the store is open (a second agent must not touch the first one's log)
        self.pipeline = pipeline

    async def __call__(self, rows: Sequence[Any]) -> bool:
        log = self.log
        count = sum(chunk.count for chunk in rows)
        size = sum(len(chunk.payload) for chunk in rows)
        if log is None or not self.pipeline.has_room(count, size) or not log.has_room(size):
            return False
        try:
            seqs, future = log.append(rows)
        except WalClosed:
            return False
        chunks = [
            logged_rows(c.table, c.columns, c.payload, c.count, seq, log) for c, seq in zip(rows, seqs, strict=True)
        ]
        future.add_done_callback(lambda done: self._queue(done, chunks))
        try:
            await asyncio.wrap_future(future)
        except OSError:
            return False
        return True

    def _queue(self, done: Future[None], chunks: list[Batch]) -> None:
        if done.exception() is None and not self.pipeline.submit_rows(chunks, force=True):
            # The pipeline has stopped: the records stay in the log and are replayed at the next start.
            logger.info("llmpulse agent: %d logged records wait in the write-ahead log for the next start", len(chunks))

    async def replay(self, poll_s: float = 0.05) -> tuple[int, int]:
        """Queue what a previous run left in the log, as the queue makes room; returns (records, rows)."""
        loop = asyncio.get_running_loop()
        records = rows = 0
        log = self.log
        if log is None:
            return 0, 0
        for item in log.recovered:
            while True:  # the queue drains on the writer's threads: poll it
                if self.pipeline.has_room(item.count):
                    break
                await asyncio.sleep(poll_s)
            payload = await loop.run_in_executor(None, item.load)
            if item.token is not None:
                chunk = Batch(
                    item.table,
                    item.columns,
                    payload,
                    item.token,
                    item.count,
                    item.parts,
                    on_settled=log.releaser(item.seqs),
                )
            else:
                chunk = logged_rows(item.table, item.columns, payload, item.count, item.seqs[0], log)
            if not self.pipeline.submit_rows([chunk], force=True):
                break  # stopping: the rest stays in the log
            records += len(item.seqs)
            rows += item.count
        log.recovered = []
        return records, rows
