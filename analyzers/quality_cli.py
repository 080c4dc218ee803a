"""``llmpulse references`` and ``llmpulse eval``: golden datasets and eval runs (filled in by the quality work)."""

from __future__ import annotations

from typing import Any


def register(verbs: Any) -> None:
    """Add the verbs; import nothing heavy here."""
    del verbs
