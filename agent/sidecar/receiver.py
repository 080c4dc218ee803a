"""The sidecar's HTTP server (aiohttp): the OTLP/HTTP receiver and the sidecar's own endpoints.

``POST /v1/traces``, ``POST /v1/metrics`` and ``POST /v1/logs`` take protobuf or JSON, optionally
gzip-compressed, as the OTLP/HTTP specification describes. Spans and GenAI events (logs) go through the
join (``join``), which gives an LLM span the content its events carry, in whichever order they come. A request is decoded and validated completely before anything
is queued, so bad data gets a 4xx with a ``google.rpc.Status`` body and nothing of it is stored. Good
data is queued all at once; when the queue is full the answer is 503 with ``Retry-After`` (a
retryable status for OTLP exporters), so load beyond what the store absorbs is pushed back to the
clients instead of being dropped. ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` serve the
operator.

Everything a client can make the agent hold is bounded: open connections (``serve``: past the cap a
connection gets a 503 and is closed), body bytes being read, decoded or logged across all requests
(503 with ``Retry-After`` past ``max_inflight_bytes``), the time to send a body, and the log lines a
flood of bad requests can write (``RateLimitedLog``).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.store.rows import Batch
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .join import GenAIJoin, Undo, joined_batch
from .otlp_decode import (
    JSON,
    PROTOBUF,
    PayloadError,
    PayloadTooLarge,
    SpanRow,
    UnsupportedEncoding,
    _add_cost,
    data_point_count,
    decompress,
    metric_rows,
    parse_metrics,
    parse_traces,
    trace_rows,
)
from .otlp_logs import log_record_count, log_rows, parse_logs

# A child of the SDK's logger: its once-per-message filter does not apply here (a logger's filters see
# only its own records), the receiver's own rate limit does.
logger = logging.getLogger("llmpulse.receiver")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # the OTLP spec's recommended limit, after decompression
# Body bytes held by all requests at once (read, decoding, waiting for the log): without a cap, a dozen
# concurrent bodies near the body limit take the agent's memory past a gigabyte.
DEFAULT_MAX_INFLIGHT_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 256
# aiohttp closes a connection that has not completed a request's headers this long after it opened or
# after its last answer (its default is an hour: idle and slow-loris connections piled up until fds ran out)
IDLE_TIMEOUT_S = 15.0
BODY_TIMEOUT_S = 60.0  # to receive a whole body once its headers are in: a trickled body holds its bytes
LOG_INTERVAL_S = 10.0  # a repeated receiver message is logged at most this often
_OTLP_PATHS = frozenset(
    ("/v1/traces", "/v1/metrics", "/v1/logs")
)  # their handlers check the token and count themselves
# The path label of llmpulse_http_requests_total: any other path is "other", so a client cannot grow it.
_KNOWN_PATHS = frozenset((*_OTLP_PATHS, "/metrics", "/healthz", "/readyz", "/dashboard"))
_SUPPORTED = f"supported: [{JSON}, {PROTOBUF}]"


@dataclass
class ReceiverStats:
    """What the receiver saw; read by ``/metrics``. Updated on the event loop thread only."""

    requests: Counter = field(default_factory=Counter)  # (path, status) -> count
    spans_accepted: int = 0
    data_points_accepted: int = 0
    log_records_accepted: int = 0
    spans_refused_busy: int = 0  # answered 503: the client keeps them and retries
    unpriced_spans: int = 0
    connections_refused: int = 0  # past max_connections: answered 503 and closed
    open_connections: Callable[[], int] = lambda: 0
    inflight_bytes: int = 0  # body bytes held by requests now
    inflight_bytes_peak: int = 0


class RateLimitedLog:
    """Log a repeated message at most once per ``interval`` seconds per key, with the count left out.

    The key names the kind of message (path and status), never the client's text, so the table stays
    small. Without it, a flood of bad requests writes one line per request: a disk-filling log rate.
    """

    def __init__(self, log: logging.Logger, interval: float = LOG_INTERVAL_S) -> None:
        self._log = log
        self.interval = interval
        self._last: dict[Any, tuple[float, int]] = {}  # key -> (time logged, suppressed since)
        self._lock = threading.Lock()

    def __call__(self, key: Any, level: int, message: str, *args: Any, exc_info: Any = None) -> bool:
        """Log unless ``key`` was logged less than ``interval`` ago; True when it was logged."""
        if not self._log.isEnabledFor(level):
            return False
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(key, (float("-inf"), 0))
            if now - last < self.interval:
                self._last[key] = (last, suppressed + 1)
                return False
            self._last[key] = (now, 0)
        if suppressed:
            message += " (%d more like it in the last %.0f s not logged)"
            args = (*args, suppressed, now - last)
        self._log.log(level, message, *args, exc_info=exc_info)
        return True


class _Held:
    """The body bytes one request holds against the in-flight cap, until it is answered (decoded and logged)."""

    __slots__ = ("bytes", "limit", "stats")

    def __init__(self, stats: ReceiverStats, limit: int) -> None:
        self.stats, self.limit, self.bytes = stats, limit, 0

    def take(self, nbytes: int) -> bool:
        stats = self.stats
        if stats.inflight_bytes + nbytes > self.limit:
            return False
        stats.inflight_bytes += nbytes
        stats.inflight_bytes_peak = max(stats.inflight_bytes_peak, stats.inflight_bytes)
        self.bytes += nbytes
        return True

    def release(self) -> None:
        self.stats.inflight_bytes -= self.bytes
        self.bytes = 0


_Decoded = tuple[list[Batch], int, "Undo | None"]  # the rows, how many items, how to undo the join's changes


class _Rejected(Exception):
    def __init__(self, status: int, message: str, code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


class OtlpReceiver:
    """Decodes OTLP requests off the event loop and hands the rows to ``sink`` (all or nothing)."""

    def __init__(
        self,
        sink: Callable[[Sequence[Batch]], bool | Awaitable[bool]],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        auth_token: str | None = None,
        prices: PriceTable | None = None,
        decode_threads: int = 2,
        redaction: Redaction | None = None,
        max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
        metrics_without_auth: bool = False,
        body_timeout: float | None = None,
        join: GenAIJoin | None = None,
    ) -> None:
        if max_inflight_bytes < max_body_bytes:
            raise ValueError(
                f"max_inflight_bytes ({max_inflight_bytes}) must be at least max_body_bytes ({max_body_bytes})"
            )
        self._sink = sink
        self.max_body_bytes = max_body_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self.body_timeout = BODY_TIMEOUT_S if body_timeout is None else body_timeout
        self._auth = auth_token.encode() if auth_token else None
        # /healthz is always open (liveness probes carry no token); /metrics when the operator says so
        self._open_paths = frozenset(("/healthz", "/metrics") if metrics_without_auth else ("/healthz",))
        self._log = RateLimitedLog(logger)
        self._prices = prices
        self._redaction = redaction  # the SDK's engine, run on the decode threads; None stores content as sent
        self._pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="llmpulse-otlp")
        self._unpriced_lock = threading.Lock()
        self.join = join  # GenAI events and retrieval documents to their LLM spans; None: spans as sent
        if join is not None and prices is not None and join.price is None:
            join.price = self._price
        self.stats = ReceiverStats()
        self.accepting = True

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics)
        app.router.add_post("/v1/logs", self.logs)
        app.middlewares.append(self._guard)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> Any:
        """With a token every endpoint but ``/healthz`` needs it; an unexpected error is a counted 500."""
        path = request.path if request.path in _KNOWN_PATHS else "other"
        try:
            if path not in self._open_paths and path not in _OTLP_PATHS:
                self._check_auth(request)
            return await handler(request)
        except _Rejected as rejected:
            self.stats.requests[(path, rejected.status)] += 1
            return _status_response(rejected, False)
        except web.HTTPException:
            raise
        except Exception:  # a bug, not the client's fault: logged with its traceback, counted, answered 500
            self._log((path, 500), logging.ERROR, "llmpulse agent: %s %s failed", request.method, path, exc_info=True)
            self.stats.requests[(path, 500)] += 1
            return web.Response(status=500, text="internal error\n")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- handlers ------------------------------------------------------------------------------

    async def traces(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._decode_traces, ExportTraceServiceResponse, "spans")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._decode_metrics, ExportMetricsServiceResponse, "data_points")

    async def logs(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._decode_logs, ExportLogsServiceResponse, "log_records")

    async def _handle(
        self, request: web.Request, decode: Callable[..., _Decoded], response_type: Any, unit: str
    ) -> web.StreamResponse:
        content_type = request.content_type
        as_json = content_type == JSON
        held = _Held(self.stats, self.max_inflight_bytes)
        try:
            self._check_auth(request)
            if content_type not in (JSON, PROTOBUF):
                raise _Rejected(
                    415, f"unsupported media type {content_type!r}, {_SUPPORTED}", code_pb2.INVALID_ARGUMENT
                )
            if not self.accepting:
                raise _Rejected(503, "the agent is shutting down", code_pb2.UNAVAILABLE, {"Retry-After": "5"})
            body = await self._read(request, held)
            loop = asyncio.get_running_loop()
            try:
                rows, count, undo = await loop.run_in_executor(
                    self._pool, decode, body, request.headers.get("Content-Encoding"), content_type
                )
            except PayloadTooLarge as exc:
                raise _Rejected(413, str(exc), code_pb2.RESOURCE_EXHAUSTED) from None
            except PayloadError as exc:
                raise _Rejected(400, str(exc), code_pb2.INVALID_ARGUMENT) from None
            except UnsupportedEncoding as exc:  # 415 is for content type and encoding only
                raise _Rejected(415, str(exc), code_pb2.INVALID_ARGUMENT) from None
            except (ValueError, RecursionError, OverflowError) as exc:  # a bad value the decoder did not foresee
                raise _Rejected(400, f"invalid OTLP payload: {exc}", code_pb2.INVALID_ARGUMENT) from None
            accepted = await self._submit(rows, undo)
            if not accepted:
                if unit == "spans":
                    self.stats.spans_refused_busy += count
                raise _Rejected(
                    503, "the agent's queue is full; retry later", code_pb2.UNAVAILABLE, {"Retry-After": "1"}
                )
        except _Rejected as rejected:
            self.stats.requests[(request.path, rejected.status)] += 1
            level = logging.DEBUG if rejected.status >= 500 else logging.INFO
            self._log(
                (request.path, rejected.status),
                level,
                "llmpulse agent: rejected %s with %s: %s",
                request.path,
                rejected.status,
                str(rejected)[:500],
            )
            return _status_response(rejected, as_json)
        finally:
            held.release()
        if unit == "spans":
            self.stats.spans_accepted += count
        elif unit == "log_records":
            self.stats.log_records_accepted += count
        else:
            self.stats.data_points_accepted += count
        self.stats.requests[(request.path, 200)] += 1
        return _message_response(response_type(), as_json)

    async def _submit(self, rows: list[Batch], undo: Undo | None) -> bool:
        """Hand the rows to the sink; when it refuses them (or fails), what the request changed in the join
        is undone, so the client's retry joins as if it came first."""
        accepted = False
        try:
            accepted = self._sink(rows) if rows else True
            if inspect.isawaitable(accepted):  # the durable sink answers once the rows are in its log
                accepted = await accepted
            return bool(accepted)
        finally:
            if not accepted and undo is not None:
                undo()

    def _busy(self) -> _Rejected:
        return _Rejected(
            503,
            f"the agent holds {self.max_inflight_bytes} bytes of request bodies already; retry later",
            code_pb2.UNAVAILABLE,
            {"Retry-After": "1"},
        )

    def _check_auth(self, request: web.Request) -> None:
        if self._auth is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        # RFC 6750: the scheme is case-insensitive; the token is compared in constant time
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._auth):
            raise _Rejected(
                401, "missing or wrong bearer token", code_pb2.UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"}
            )

    async def _read(self, request: web.Request, held: _Held) -> bytes:
        """The body, its bytes held against the in-flight cap (reserved before reading when the length is known)."""
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Rejected(
                413,
                f"body of {length} bytes is over the limit of {self.max_body_bytes} bytes",
                code_pb2.RESOURCE_EXHAUSTED,
            )
        busy = self._busy()
        if length is not None and not held.take(length):
            raise busy
        try:
            async with asyncio.timeout(self.body_timeout):
                if length is not None:
                    return await request.read()
                parts: list[bytes] = []  # chunked: held as it arrives
                async for chunk in request.content.iter_any():
                    if held.bytes + len(chunk) > self.max_body_bytes:
                        raise web.HTTPRequestEntityTooLarge(max_size=self.max_body_bytes, actual_size=held.bytes)
                    if not held.take(len(chunk)):
                        raise busy
                    parts.append(chunk)
                return b"".join(parts)
        except web.HTTPRequestEntityTooLarge:
            raise _Rejected(
                413, f"body is over the limit of {self.max_body_bytes} bytes", code_pb2.RESOURCE_EXHAUSTED
            ) from None
        except TimeoutError:
            raise _Rejected(
                408, f"the body was not received within {self.body_timeout:g} s", code_pb2.DEADLINE_EXCEEDED
            ) from None

    # --- decoding (worker threads) ---------------------------------------------------------------

    def _decode_traces(self, body: bytes, encoding: str | None, content_type: str) -> _Decoded:
        request = parse_traces(decompress(body, encoding, self.max_body_bytes), content_type)
        undo: list[Undo] = []
        join = self.join

        def on_genai(spans: list[SpanRow]) -> None:
            if join is not None:
                try:
                    undo.append(join.spans(spans))
                except Exception:  # a bug in the join must not cost the spans: stored as they came
                    self._log_join_failure()

        rows = trace_rows(
            request,
            prices=self._prices,
            on_unpriced=self._count_unpriced,
            redaction=self._redaction,
            on_genai=on_genai if join is not None else None,
        )
        return ([rows] if rows.count else []), rows.count, undo[0] if undo else None

    def _decode_metrics(self, body: bytes, encoding: str | None, content_type: str) -> _Decoded:
        request = parse_metrics(decompress(body, encoding, self.max_body_bytes), content_type)
        return metric_rows(request), data_point_count(request), None

    def _decode_logs(self, body: bytes, encoding: str | None, content_type: str) -> _Decoded:
        """``otel_logs`` rows, and the rows of waiting spans the request's GenAI events complete."""
        request = parse_logs(decompress(body, encoding, self.max_body_bytes), content_type)
        logs, events = log_rows(request, redaction=self._redaction)
        batches = [logs] if logs.count else []
        if self.join is None or not events:
            return batches, log_record_count(request), None
        try:
            released, undo = self.join.events(events)
        except Exception:  # a bug in the join must not cost the logs: stored, joined to nothing
            self._log_join_failure()
            return batches, log_record_count(request), None
        if released:
            batches.append(joined_batch(released))
        return batches, log_record_count(request), undo

    def _log_join_failure(self) -> None:
        self._log("join", logging.ERROR, "llmpulse agent: joining GenAI events to spans failed", exc_info=True)

    def _price(self, attrs: dict[str, Any]) -> None:
        if self._prices is not None:
            _add_cost(attrs, self._prices, self._count_unpriced)

    def _count_unpriced(self) -> None:
        with self._unpriced_lock:
            self.stats.unpriced_spans += 1


def _message_response(
    message: Any, as_json: bool, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    if as_json:
        body = json_format.MessageToJson(message, indent=None).encode()
        return web.Response(status=status, body=body, content_type=JSON, headers=headers)
    return web.Response(status=status, body=message.SerializeToString(), content_type=PROTOBUF, headers=headers)


def _status_response(rejected: _Rejected, as_json: bool) -> web.Response:
    status = status_pb2.Status(code=rejected.code, message=str(rejected))
    return _message_response(status, as_json, rejected.status, rejected.headers)


# --- listening -----------------------------------------------------------------------------------


async def serve(
    runner: web.AppRunner,
    host: str,
    port: int,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    stats: ReceiverStats | None = None,
) -> asyncio.AbstractServer:
    """Listen on ``host:port`` with ``runner``'s aiohttp server, at most ``max_connections`` open at once.

    aiohttp has no connection cap (``TCPSite`` takes a backlog only). Its ``Server`` is the asyncio
    protocol factory, so the factory counts: past the cap the connection is answered 503 with
    ``Retry-After`` and closed, costing one descriptor for a moment. The count is kept here, from the
    factory call to ``connection_lost``, because a burst of accepts calls the factory many times before
    aiohttp registers any of those connections. Close the returned server before ``runner.cleanup()``.
    """
    server = runner.server
    assert server is not None, "call runner.setup() first"
    stats = stats if stats is not None else ReceiverStats()
    opened = _OpenCount()
    stats.open_connections = lambda: opened.value

    def factory() -> asyncio.BaseProtocol:
        if opened.value >= max_connections:
            stats.connections_refused += 1
            return _Refused()
        return _Counted(server(), opened)

    return await asyncio.get_running_loop().create_server(factory, host, port)


class _OpenCount:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class _Counted(asyncio.Protocol):
    """aiohttp's handler for one connection, counted open until the connection is lost."""

    __slots__ = ("_count", "_inner", "_open")

    def __init__(self, inner: Any, count: _OpenCount) -> None:
        self._inner, self._count, self._open = inner, count, True
        count.value += 1

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._count.value -= 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._close()
        self._inner.connection_lost(exc)

    def __del__(self) -> None:  # a transport that failed before connection_made never calls connection_lost
        self._close()


_BUSY_TEXT = b"the agent has too many connections; retry later\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(_BUSY_TEXT)
    + _BUSY_TEXT
)
_REFUSED_LINGER_S = 1.0  # time for the 503 to reach the client before the socket is closed


class _Refused(asyncio.Protocol):
    """A connection past the cap: 503, half-close, then closed when the client closes or after a second."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(_REFUSED_LINGER_S, transport.close)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read

    def eof_received(self) -> bool:
        self._transport.close()
        return False
