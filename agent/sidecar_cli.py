"""``llmpulse agent``: run the sidecar (OTLP receiver, GPU collector, serving-engine scraper)."""

from __future__ import annotations

from typing import Any


def register(verbs: Any) -> None:
    """Add the ``agent`` verb (filled in by the sidecar work)."""
    del verbs
