"""The one grammar of durations, for every command and setting: a number and a unit.

``500ms``, ``5s``, ``2m``, ``1.5h``, ``7d``, ``1w``; a bare number is seconds. It lives with the store
contract because the windows over stored data (``analyze``, ``report``, the dashboard) and the
sidecar's intervals all read it, and every one of them may import the store.
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_PLAIN = re.compile(r"^\s*\d+[smhd]\s*$")  # what every reader of a window took before this grammar
_WHOLE_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def seconds(text: str) -> float:
    """Seconds of a duration; ``ValueError`` naming the accepted forms for anything else."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad duration {str(text)[:40]!r}: use a number and ms, s, m, h, d or w, e.g. 30s, 5m, 1h, 7d")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"]


def canonical(text: str) -> str:
    """The same duration as a whole number and ``s``, ``m``, ``h`` or ``d``, the form every reader takes.

    ``1w`` -> ``7d``, ``1.5h`` -> ``90m``, ``90`` -> ``90s``. Text already in that form, and text that is
    not a positive whole number of seconds, come back unchanged, so the reader reports its own error.
    """
    if not isinstance(text, str) or _PLAIN.match(text):
        return text
    try:
        value = seconds(text)
    except ValueError:
        return text
    if not math.isfinite(value) or value <= 0 or not value.is_integer():
        return text
    whole = int(value)
    for unit, size in _WHOLE_UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return text  # unreachable: every whole number of seconds divides by 1
