"""Time windows: the current window and the reference window before it, in UTC, from durations or times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import AnalyzerInputError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1h"``, ``"7d"`` (units s, m, h, d, w) as a timedelta; ValueError says what is accepted."""
    match = _DURATION.match(text or "") if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise AnalyzerInputError(
            f"bad duration {text!r}: use a positive whole number and a unit s, m, h, d or w, e.g. 30m, 1h, 7d"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


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
