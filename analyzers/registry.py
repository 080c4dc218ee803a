"""Analyzer names and where their ``analyze`` functions live, imported only when run.

Each entry maps a name (``llmpulse analyze NAME``) to ``"module:function"``; the function has the
signature ``analyze(store: AnalysisStore, window: Window, reference: Window, options: dict) ->
list[AnalysisResult]`` and its module defines ``VERSION`` (a string stored with every result row).
One line per analyzer; the order is the order ``llmpulse analyze all`` runs them in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

ANALYZERS: dict[str, str] = {
    "operational": "llmpulse.analyzers.operational:analyze",
    "drift": "llmpulse.analyzers.drift:analyze",
    # hallucination, injection and quality analyzers: one line each below
    "hallucination": "llmpulse.analyzers.hallucination:analyze",
    "injection": "llmpulse.analyzers.injection:analyze",
    "quality": "llmpulse.analyzers.quality_analyzer:analyze",
}


def names() -> list[str]:
    return list(ANALYZERS)


def check_name(name: str) -> str:
    if name not in ANALYZERS:
        from .base import AnalyzerInputError

        raise AnalyzerInputError(f"unknown analyzer {name!r}; choose from {', '.join(ANALYZERS)} or 'all'")
    return name


def load(name: str) -> Callable[..., Any]:
    """The analyze function of ``name`` (imports its module now)."""
    module_name, _, function = ANALYZERS[check_name(name)].partition(":")
    return getattr(importlib.import_module(module_name), function)


def version(name: str) -> str:
    """The analyzer module's VERSION, or "unknown" when the module cannot even be imported."""
    module_name = ANALYZERS[check_name(name)].partition(":")[0]
    try:
        return str(getattr(importlib.import_module(module_name), "VERSION", "unknown"))
    except Exception:
        return "unknown"
