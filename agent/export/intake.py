"""The pipeline's second intake: rows already encoded per table (the sidecar's receiver and collectors).

Bounded in rows and in bytes, all or nothing: a producer that is refused still holds its rows and tells
its client to retry (HTTP 503). Each pass of the export thread joins what waits into batches of about
``batch_size`` rows per table; rows logged in the write-ahead log are sealed in it first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from llmpulse.agent._log import logger
from llmpulse.agent.store.rows import Batch, new_token

# Encoded rows are bounded in bytes as well as rows: a few huge OTLP bodies must not hold gigabytes
# between the receiver and the store. One insert joins at most this many bytes of them.
_MAX_QUEUE_BYTES = 64 * 1024 * 1024
_MAX_INSERT_BYTES = 16 * 1024 * 1024


class RowIntake:
    """Batches of encoded rows waiting for the export thread; safe to fill from any thread."""

    def __init__(self, *, max_rows: int, batch_size: int) -> None:
        self._max_rows = max_rows
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._chunks: deque[Batch] = deque()
        self.rows = 0  # rows waiting
        self._bytes = 0
        self.popped = 0  # rows taken by the export thread so far

    def has_room(self, count: int, size: int = 0) -> bool:
        """Whether ``submit`` would take ``count`` more rows of ``size`` bytes now."""
        with self._lock:
            return self._fits(count, size)

    def _fits(self, count: int, size: int) -> bool:
        """Under the row cap and the byte cap, or an empty intake (rows are never refused forever)."""
        if not self.rows:
            return True
        return self.rows + count <= self._max_rows and self._bytes + size <= _MAX_QUEUE_BYTES

    def submit(self, batches: Sequence[Batch], *, force: bool = False) -> bool:
        """Take all of ``batches`` or none; ``force`` skips the caps (rows already acknowledged from the log)."""
        count = sum(rows.count for rows in batches)
        size = sum(len(rows.payload) for rows in batches)
        with self._lock:
            if not force and not self._fits(count, size):
                return False
            self._chunks.extend(rows for rows in batches if rows.count)
            self.rows += count
            self._bytes += size
        return True

    def drain(self, put: Callable[[Batch], None]) -> None:
        """Join what waits into batches of about ``batch_size`` rows per table, and ``put`` each.

        Chunks of different tables arrive interleaved (GPU samples and processes, traces and metrics);
        grouping them per table keeps inserts few and large. Order within a table is kept. Chunks from
        the write-ahead log are grouped apart and sealed in it first (token and members written before
        the insert), so a replay after a crash rebuilds the same batch with the same token; a batch
        replayed from the log (it has ``on_settled``) goes on unchanged.
        """
        with self._lock:
            chunks = list(self._chunks)
            self._chunks.clear()
            taken = self.rows
            self.rows = 0
            self._bytes = 0
        if not chunks:
            return
        self.popped += taken
        by_table: dict[tuple[str, Any], list[Batch]] = {}
        for chunk in chunks:
            if chunk.on_settled is not None:
                put(chunk)
                continue
            by_table.setdefault((chunk.table, chunk.journal), []).append(chunk)
        for (_table, journal), table_chunks in by_table.items():
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
                if journal is not None and not self._seal(journal, group, batch):
                    continue
                put(batch)

    def _seal(self, journal: Any, group: list[Batch], batch: Batch) -> bool:
        """Give a batch of logged chunks its recorded token; when the log cannot record it, queue them again."""
        seqs = [chunk.seq for chunk in group]
        try:
            batch.token = journal.seal(seqs)
        except Exception:
            logger.error("llmpulse: could not seal a batch in the write-ahead log; trying again", exc_info=True)
            with self._lock:
                self._chunks.extend(group)
                self.rows += batch.count
                self._bytes += len(batch.payload)
            self.popped -= batch.count
            return False
        batch.on_settled = journal.releaser(seqs)
        return True
