"""SQL pieces every analyzer query shares: the time-window condition and its bound parameters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
from llmpulse.analyzers.framework.windows import Window, utc

WINDOW_CONDITIONS = (
    "Timestamp >= fromUnixTimestamp64Nano({start:Int64})",
    "Timestamp < fromUnixTimestamp64Nano({end:Int64})",
)
IN_WINDOW = " AND ".join(WINDOW_CONDITIONS)
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def nanos(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact (no float rounding), for ``fromUnixTimestamp64Nano``."""
    delta = utc(moment) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def window_parameters(database: str, window: Window) -> dict[str, Any]:
    """The parameters of :data:`IN_WINDOW` and of ``{db:Identifier}``."""
    return {"db": database, "start": nanos(window.start), "end": nanos(window.end)}


def json_text(value: Any) -> str:
    """A ``Details`` column's JSON text (numpy numbers and non-string keys allowed)."""
    return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
