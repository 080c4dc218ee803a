"""What the sidecar calls on a collector: the ``Collector`` protocol.

A collector reads one source (NVML, a serving engine's ``/metrics``) and returns plain rows per table;
it knows nothing about export. The sidecar calls ``collect`` on a worker thread every interval, one
tick at a time, turns the rows into store batches and, at shutdown, calls ``close``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

Rows = dict[str, list[dict[str, Any]]]
"""Rows per table; each row maps the table's column names to plain values (aware datetimes for times)."""


@runtime_checkable
class Collector(Protocol):
    """A source of rows sampled on a schedule."""

    TABLES: tuple[str, ...]
    """The tables ``collect`` fills."""

    def collect(self, now: datetime) -> Rows:
        """The rows of one tick at ``now`` (timezone-aware). Raising counts the tick as failed."""
        ...

    @property
    def failed_ticks(self) -> int:
        """Ticks that failed inside ``collect`` without raising (it returned no rows and logged why)."""
        ...

    def close(self) -> None:
        """Release the source (at the sidecar's shutdown)."""
        ...
