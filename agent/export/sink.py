"""What a destination of finished spans must do: the one ``Sink`` protocol, and sinks of user callables.

The pipeline hands every sink the same chunks of spans, in order: ClickHouse (``clickhouse_sink``), OTLP
(``otlp_sink``) and the callables given as ``span_exporters``. Every method runs on the export thread,
except ``flush`` and ``shutdown``, which run on the caller's; none may raise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from llmpulse.agent._log import logger
from llmpulse.agent.enrich.span import FinishedSpan


class Sink(Protocol):
    """A destination of finished spans."""

    def export(self, spans: Sequence[FinishedSpan]) -> bool:
        """Take one chunk of at most ``batch_size`` spans; False when this sink could not deliver it."""
        ...

    def end_batch(self) -> None:
        """The chunks since the last call form one batch (the store sink makes one insert of them)."""
        ...

    def flush(self, timeout: float) -> bool:
        """After a flushing pass: deliver what is buffered within ``timeout``; True when nothing is left behind."""
        ...

    def shutdown(self) -> None:
        """Release connections and threads once the export thread has stopped."""
        ...


class CallbackSink:
    """A user's callable (``configure(span_exporters=[...])``) as a sink; its errors are logged, never raised."""

    def __init__(self, callback: Callable[[Sequence[FinishedSpan]], Any]) -> None:
        self.callback = callback

    def export(self, spans: Sequence[FinishedSpan]) -> bool:
        try:
            self.callback(spans)
        except Exception:
            logger.error("llmpulse: span exporter %r failed", self.callback, exc_info=True)
        return True

    def end_batch(self) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass
