"""Time windows: the current window and the reference window before it, in UTC, from durations or times."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import AnalyzerInputError

MAX_WINDOW_SECONDS = 3650 * 86400


def parse_duration(text: str) -> timedelta:
    """A window length in the one duration grammar (``30m``, ``1.5h``, ``7d``, ``1w``: the agent's
    ``store.duration``) as a timedelta; AnalyzerInputError says what is accepted."""
    from llmpulse.agent.store.duration import seconds

    try:
        value = seconds(text)
    except ValueError as exc:
        raise AnalyzerInputError(str(exc)) from None
    if not math.isfinite(value) or value <= 0 or value > MAX_WINDOW_SECONDS:
        raise AnalyzerInputError(f"bad duration {str(text)[:40]!r}: a window must be positive and at most 3650d")
    return timedelta(seconds=value)


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC; naive values are refused (an instant must never depend on the host's zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"times must be timezone-aware, got {value!r}")
    return value.astimezone(timezone.utc)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with an offset or ``Z`` (e.g. ``2025-06-01T12:00:00Z``), in UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AnalyzerInputError(f"bad time {text!r}: use ISO 8601 with a zone, e.g. 2025-06-01T12:00:00Z") from None
    if value.tzinfo is None:
        raise AnalyzerInputError(f"bad time {text!r}: give a zone, e.g. 2025-06-01T12:00:00Z or +02:00")
    return utc(value)


@dataclass(frozen=True)
class Window:
    """A half-open time interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"a window must end after it starts, got {self.start.isoformat()} .. {self.end.isoformat()}"
            )

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}..{self.end:%Y-%m-%d %H:%M:%S} UTC"


def windows(
    current: str | timedelta, reference: str | timedelta, *, end: datetime | None = None
) -> tuple[Window, Window]:
    """The current window (``current`` long, ending at ``end``, default now) and the reference just before it.

    ``windows("1h", "7d")`` gives the last hour and the seven days before that hour.
    """
    cur = parse_duration(current) if isinstance(current, str) else current
    ref = parse_duration(reference) if isinstance(reference, str) else reference
    stop = utc(end) if end is not None else datetime.now(timezone.utc)
    window = Window(stop - cur, stop)
    return window, Window(window.start - ref, window.start)
