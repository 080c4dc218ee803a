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

from .errors import AnalyzerInputError

ANALYZERS: dict[str, str] = {
    "operational": "llmpulse.analyzers.operational:analyze",
    "drift": "llmpulse.analyzers.drift.analyzer:analyze",
    "hallucination": "llmpulse.analyzers.hallucination.analyzer:analyze",
    "injection": "llmpulse.analyzers.injection.analyzer:analyze",
    "quality": "llmpulse.analyzers.quality.analyzer:analyze",
}


def names() -> list[str]:
    return list(ANALYZERS)


def check_name(name: str) -> str:
    if name not in ANALYZERS:
        raise AnalyzerInputError(f"unknown analyzer {name!r}; choose from {', '.join(ANALYZERS)} or 'all'")
    return name


def load(name: str) -> Callable[..., Any]:
    """The analyze function of ``name`` (imports its module now)."""
    module_name, _, function = ANALYZERS[check_name(name)].partition(":")
    return getattr(importlib.import_module(module_name), function)


def version(name: str) -> str:
    """The analyzer module's VERSION, or "unknown" when the module cannot even be imported."""
    check_name(name)
    try:
        return str(getattr(_module(name), "VERSION", "unknown"))
    except Exception:
        return "unknown"


def defaults(name: str) -> dict[str, Any]:
    """The analyzer module's DEFAULTS: the options it knows (imports its module now; import errors propagate)."""
    return dict(getattr(_module(name), "DEFAULTS", {}))


def _module(name: str) -> Any:
    return importlib.import_module(ANALYZERS[check_name(name)].partition(":")[0])
