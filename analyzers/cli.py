"""``llmpulse analyze`` and ``llmpulse references``: the analyzer verbs (filled in by the analyzer work)."""

from __future__ import annotations

from typing import Any


def register(verbs: Any) -> None:
    """Add the analyzer verbs; import nothing heavy here (numpy and friends load in the handlers)."""
    del verbs
