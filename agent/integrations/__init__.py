"""Automatic instrumentation: LLM client libraries and frameworks recorded without decorating app code.

``instrument("openai", "anthropic", ...)`` patches each library once (again is a no-op) and
``uninstrument()`` restores it. Each integration is a module here with ``instrument(**options)`` and
``uninstrument()``; a library is imported only when it is instrumented, so an app that never asks pays
nothing. The span rules (one LLM call, one LLM span; nesting under ``@observe``) are in ``agent.sdk.calls``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Iterable
from typing import Any

from llmpulse.agent._log import logger

from .patching import patched_libraries

# name -> (integration module, the package it needs)
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "openai": ("llmpulse.agent.integrations.openai", "openai"),
    "anthropic": ("llmpulse.agent.integrations.anthropic", "anthropic"),
    "litellm": ("llmpulse.agent.integrations.litellm", "litellm"),
    "langchain": ("llmpulse.agent.integrations.langchain", "langchain_core"),
    "llamaindex": ("llmpulse.agent.integrations.llamaindex", "llama_index.core"),
    "threads": ("llmpulse.agent.integrations.threads", "concurrent.futures"),
}
DEFAULT = ("openai", "anthropic", "litellm", "langchain", "llamaindex")
"""What ``instrument()`` with no names covers: every one of these whose package is installed."""
ENV_INSTRUMENT = "LLMPULSE_INSTRUMENT"

_lock = threading.Lock()
_active: dict[str, dict[str, Any]] = {}


class InstrumentError(ValueError):
    """An unknown integration name, or one whose package is not installed."""


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def parse_names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Names from a list or a comma-separated string (``LLMPULSE_INSTRUMENT=openai,langchain``); ``all`` = DEFAULT."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if not name:
            continue
        if name == "all":
            names.extend(DEFAULT)
        elif name not in INTEGRATIONS:
            raise InstrumentError(f"unknown integration {name!r}: choose from {', '.join(INTEGRATIONS)} (or 'all')")
        else:
            names.append(name)
    return tuple(dict.fromkeys(names))


def instrument(*libraries: str, **options: Any) -> list[str]:
    """Instrument the named libraries (none named: every DEFAULT one installed); the names now instrumented.

    A named library that is not installed raises :class:`InstrumentError` (naming the extra to install);
    options (``stream_usage=True``) go to every integration that takes them.
    """
    names = parse_names(libraries) if libraries else tuple(n for n in DEFAULT if _installed(INTEGRATIONS[n][1]))
    with _lock:
        for name in names:
            module_name, package = INTEGRATIONS[name]
            if not _installed(package):
                raise InstrumentError(
                    f"cannot instrument {name}: the package {package.split('.')[0]!r} is not installed "
                    f"(pip install 'llmpulse[{name}]')"
                )
            if name in _active and _active[name] == options:
                continue
            if name in _active:
                importlib.import_module(module_name).uninstrument()
            importlib.import_module(module_name).instrument(**options)
            _active[name] = dict(options)
            logger.debug("llmpulse: instrumented %s", name)
        return sorted(_active)


def uninstrument(*libraries: str) -> list[str]:
    """Undo :func:`instrument` for the named libraries (none named: all); the names still instrumented."""
    with _lock:
        names = parse_names(libraries) if libraries else tuple(_active)
        for name in names:
            if _active.pop(name, None) is not None:
                importlib.import_module(INTEGRATIONS[name][0]).uninstrument()
        return sorted(_active)


def instrumented() -> list[str]:
    """The integrations instrumented now."""
    with _lock:
        return sorted(_active)


def from_environment() -> tuple[str, ...]:
    """The names in ``LLMPULSE_INSTRUMENT`` (``configure()`` instruments them)."""
    return parse_names(os.environ.get(ENV_INSTRUMENT))


__all__ = [
    "DEFAULT",
    "ENV_INSTRUMENT",
    "INTEGRATIONS",
    "InstrumentError",
    "from_environment",
    "instrument",
    "instrumented",
    "parse_names",
    "patched_libraries",
    "uninstrument",
]
