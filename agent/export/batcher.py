"""Records from the app's threads to one export thread: the OpenTelemetry ``BatchSpanProcessor``'s shape.

``emit`` (the app's thread) only appends to a bounded deque and, when a batch is ready, wakes the worker;
a full queue drops the record and counts it. The worker drains the queue in batches, by size and by
time, and hands each to ``_export``. ``flush`` waits for one pass of the worker; ``shutdown`` drains what
is queued within a deadline. A forked child starts with an empty queue and a thread of its own, whether
the fork ran Python's fork hooks or not (a pid check on ``emit``).

Subclasses say what an export is (``_export``), what follows each pass (``_end_pass``), what a flush or
the shutdown waits for (``_settle``), and what a child re-creates (``_after_fork``); they start the
export thread (``_start_thread``) once everything it uses is in place, then ``_register_hooks``.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections import deque
from typing import Any

from llmpulse.agent._log import logger

from .stats import Counters

_MAX_INSERT_BATCHES = 5  # under backlog one export takes up to this many batches' worth of records


class Batcher:
    """The bounded queue, the export thread, and flush / shutdown / fork handling of one pipeline."""

    def __init__(self, *, max_queue_size: int, batch_size: int, flush_interval: float, shutdown_timeout: float) -> None:
        self.counters = Counters()
        self._max_queue = max_queue_size
        self._batch_size = batch_size
        self._max_export = _MAX_INSERT_BATCHES * batch_size
        self._flush_interval = flush_interval
        self._shutdown_timeout = shutdown_timeout
        self._start()

    def _register_hooks(self) -> None:
        """Fork and exit hooks, once the subclass is built and its threads run (a failed set-up leaves none)."""
        if hasattr(os, "register_at_fork"):
            weak_reinit = weakref.WeakMethod(self._after_fork)

            def _after_in_child() -> None:
                reinit = weak_reinit()
                if reinit is not None:
                    reinit()

            os.register_at_fork(after_in_child=_after_in_child)
        atexit.register(self.shutdown)

    def _start(self) -> None:
        """The queue, events and worker thread of this process."""
        self._pid = os.getpid()
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._waiters_lock = threading.Lock()
        self._flush_waiters: list[threading.Event] = []
        self._popped = 0
        self._thread = threading.Thread(target=self._run, name="llmpulse-export", daemon=True)

    def _start_thread(self) -> None:
        self._thread.start()

    # --- hot path ------------------------------------------------------------------------------

    def emit(self, item: Any) -> None:
        """Enqueue without blocking; when the queue is full the record is dropped and counted."""
        if self._pid != os.getpid():
            self._after_fork()
        queue = self._queue
        if len(queue) >= self._max_queue or self._stopped:
            self.counters.drop("queue_full" if not self._stopped else "after_shutdown", 1)
            return
        queue.append(item)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    # --- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self._flush_interval
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            stopping = self._stopping.is_set()
            with self._waiters_lock:  # only flushes asked for before this pass are answered by it
                waiters, self._flush_waiters = self._flush_waiters, []
            try:
                self._drain(everything=bool(waiters) or stopping or len(self._queue) >= self._batch_size)
                self._end_pass()
            except Exception:
                logger.error("llmpulse: export worker error", exc_info=True)
            if waiters or stopping:
                self._settle(stopping)
            for waiter in waiters:
                waiter.set()
            if stopping:
                return

    def _drain(self, *, everything: bool) -> None:
        """Export the queue in batches; on a timer tick export what is there, at least one batch.

        A batch holds ``batch_size`` records, or up to ``_max_export`` when that many already wait:
        under backlog, one larger export instead of several small ones (for the store, one insert: each
        insert makes a part in every table and view it reaches, so the engine spends less per row, and
        merges less later).
        """
        first = True
        records = self._queue
        while records and (everything or first):
            first = False
            waiting = len(records)
            take = self._max_export if waiting >= self._max_export else min(self._batch_size, waiting)
            popleft = records.popleft
            items = [popleft() for _ in range(take)]
            self._popped += take
            self._export(items)

    def _export(self, items: list[Any]) -> None:
        """Export one batch of records (on the export thread)."""
        raise NotImplementedError

    def _end_pass(self) -> None:
        """After each pass over the queue (on the export thread)."""

    def _settle(self, stopping: bool) -> None:
        """A flush or the shutdown: wait until what the passes so far handed on is delivered or spooled."""

    # --- control -------------------------------------------------------------------------------

    def _flush_pass(self, timeout: float) -> bool:
        """Wait for one whole pass of the worker (it must be running); True when it came within ``timeout``."""
        waiter = threading.Event()
        with self._waiters_lock:
            self._flush_waiters.append(waiter)
        self._wake.set()
        return waiter.wait(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop accepting records, let the worker drain the queue within ``timeout``; True when it finished."""
        if self._stopped:
            return True
        timeout = self._shutdown_timeout if timeout is None else timeout
        atexit.unregister(self.shutdown)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._stopped = True
        finished = not self._thread.is_alive()
        if not finished:
            logger.error(
                "llmpulse: shutdown deadline of %.1fs passed with %d records queued", timeout, len(self._queue)
            )
        return finished

    def _after_fork(self) -> None:
        """In a forked child: fresh queue, events, counters and thread; the parent's queued records are the parent's."""
        self._reset()
        self._start_thread()

    def _reset(self) -> None:
        self.counters.reset()
        self._start()
