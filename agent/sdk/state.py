"""The one global slot: the running pipeline, or None before ``configure()`` (everything a no-op)."""

from __future__ import annotations

from typing import Any

pipeline: Any = None
