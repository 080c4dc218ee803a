"""``instrument("threads")``: work submitted to a thread pool or started in a thread keeps the caller's span.

``contextvars`` follow ``asyncio`` tasks by themselves, but ``concurrent.futures.ThreadPoolExecutor.submit``
and ``threading.Thread`` start the callable in an empty context, so a call made there would start a new
trace. This patch runs the callable in a copy of the submitting context, as OpenTelemetry's threading
instrumentation does for its own context. Without it, wrap the callable with
:func:`llmpulse.agent.in_current_context`.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

from .patching import patch, unpatch

LIBRARY = "threads"


def in_current_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` bound to a copy of the current context: spans it records nest under the current one."""
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return context.run(fn, *args, **kwargs)

    return run


def instrument(**_options: Any) -> None:
    def submit(original: Any) -> Any:
        def wrapper(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            return original(self, in_current_context(fn), *args, **kwargs)

        return wrapper

    def start(original: Any) -> Any:
        def wrapper(self: Any) -> Any:
            run = self.run
            context = contextvars.copy_context()
            self.run = lambda: context.run(run)  # the instance attribute: Thread.run itself is left alone
            return original(self)

        return wrapper

    patch(LIBRARY, concurrent.futures.ThreadPoolExecutor, "submit", submit)
    patch(LIBRARY, threading.Thread, "start", start)


def uninstrument() -> None:
    unpatch(LIBRARY)
