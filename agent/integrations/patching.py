"""Patching library methods, idempotently and reversibly: the one place that replaces attributes.

A patch remembers the original it replaced, so ``uninstrument()`` restores exactly that, and patching
twice is a no-op (the wrapper carries a marker). Wrappers keep the original's name and docstring
(``functools.wraps``) so tracebacks and ``help()`` read as before.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

MARKER = "__llmpulse_original__"
_lock = threading.Lock()
_patched: dict[str, list[tuple[Any, str, Any]]] = {}  # library -> [(owner, attribute, original)]


def is_patched(owner: Any, attribute: str) -> bool:
    return hasattr(inspect.getattr_static(owner, attribute, None), MARKER)


def patch(library: str, owner: Any, attribute: str, make_wrapper: Callable[[Any], Callable[..., Any]]) -> bool:
    """Replace ``owner.attribute`` by ``make_wrapper(original)``; False when it is missing or already patched."""
    with _lock:
        original = inspect.getattr_static(owner, attribute, None)
        if original is None or hasattr(original, MARKER):
            return False
        function = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        wrapper = functools.wraps(function)(make_wrapper(function))
        setattr(wrapper, MARKER, original)
        if isinstance(original, staticmethod):
            wrapper = staticmethod(wrapper)
        elif isinstance(original, classmethod):
            wrapper = classmethod(wrapper)
        setattr(owner, attribute, wrapper)
        _patched.setdefault(library, []).append((owner, attribute, original))
        return True


def unpatch(library: str) -> int:
    """Restore every original the library's patches replaced; how many."""
    with _lock:
        restored = _patched.pop(library, [])
        for owner, attribute, original in reversed(restored):
            setattr(owner, attribute, original)
        return len(restored)


def patched_libraries() -> list[str]:
    with _lock:
        return sorted(name for name, items in _patched.items() if items)
