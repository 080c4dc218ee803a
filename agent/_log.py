"""The SDK's own logger: errors inside instrumentation are logged once, never raised into the app."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("llmpulse")


class _OncePerMessage(logging.Filter):
    """Let each distinct warning/error message template through once, so a broken exporter cannot flood logs."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (str(record.msg), record.levelno)
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        return True

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


once_filter = _OncePerMessage()
logger.addFilter(once_filter)
