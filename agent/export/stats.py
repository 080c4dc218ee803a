"""The pipeline's counters, kept behind one lock: the app's threads, the export thread and the writer all count."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


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
    streams_without_usage: int = 0  # streamed LLM calls that reported no tokens (recorded with NULL tokens and cost)
    otlp_exported: int = 0
    otlp_failed: int = 0
    insert_seconds_total: float = 0.0
    inserts: int = 0
    held: int = 0  # rows the writer holds because neither the store nor the spool could take them
    dead_letter_evicted: int = 0  # refused rows removed from spool/dead/ (oldest first) to keep it under the cap


class Counters:
    """One ``Stats`` and the lock that guards it; update with ``with counters.lock: counters.stats.x += n``."""

    __slots__ = ("lock", "stats")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stats = Stats()

    def reset(self) -> None:
        """Fresh counters and lock (a forked child: the parent's counts and lock state are the parent's)."""
        self.lock = threading.Lock()
        self.stats = Stats()

    def drop(self, reason: str, count: int) -> None:
        """Count records lost, by reason."""
        with self.lock:
            self.stats.dropped += count
            self.stats.dropped_by_reason[reason] = self.stats.dropped_by_reason.get(reason, 0) + count

    def snapshot(self) -> Stats:
        """A copy of the counters (levels are filled in by the caller)."""
        with self.lock:
            stats = self.stats
            return Stats(**{**stats.__dict__, "dropped_by_reason": dict(stats.dropped_by_reason)})
