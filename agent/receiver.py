"""The sidecar's HTTP server (aiohttp): the OTLP/HTTP receiver and the sidecar's own endpoints.

``POST /v1/traces`` and ``POST /v1/metrics`` take protobuf or JSON, optionally gzip-compressed
(OTLP/HTTP, standards.md section 5). A request is decoded and validated completely before anything
is queued, so bad data gets a 4xx with a ``google.rpc.Status`` body and nothing of it is stored. Good
data is queued all at once; when the queue is full the answer is 503 with ``Retry-After`` (a
retryable status for OTLP exporters), so load beyond what the store absorbs is pushed back to the
clients instead of being dropped. ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` serve the
operator.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ._log import logger
from .otlp_decode import (
    JSON,
    PROTOBUF,
    EncodedRows,
    PayloadError,
    PayloadTooLarge,
    data_point_count,
    decompress,
    metric_rows,
    parse_metrics,
    parse_traces,
    trace_rows,
)
from .prices import PriceTable

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # the OTLP spec's recommended limit, after decompression
_SUPPORTED = f"supported: [{JSON}, {PROTOBUF}]"


@dataclass
class ReceiverStats:
    """What the receiver saw; read by ``/metrics``. Updated on the event loop thread only."""

    requests: Counter = field(default_factory=Counter)  # (path, status) -> count
    spans_accepted: int = 0
    data_points_accepted: int = 0
    spans_refused_busy: int = 0  # answered 503: the client keeps them and retries
    unpriced_spans: int = 0


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
        sink: Callable[[Sequence[EncodedRows]], bool],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        auth_token: str | None = None,
        prices: PriceTable | None = None,
        decode_threads: int = 2,
    ) -> None:
        self._sink = sink
        self.max_body_bytes = max_body_bytes
        self._auth = f"Bearer {auth_token}".encode() if auth_token else None
        self._prices = prices
        self._pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="llmpulse-otlp")
        self._unpriced_lock = threading.Lock()
        self.stats = ReceiverStats()
        self.accepting = True

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- handlers ------------------------------------------------------------------------------

    async def traces(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._decode_traces, ExportTraceServiceResponse, "spans")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, self._decode_metrics, ExportMetricsServiceResponse, "data_points")

    async def _handle(
        self, request: web.Request, decode: Callable[..., tuple[list[EncodedRows], int]], response_type: Any, unit: str
    ) -> web.StreamResponse:
        content_type = request.content_type
        as_json = content_type == JSON
        try:
            self._check_auth(request)
            if content_type not in (JSON, PROTOBUF):
                raise _Rejected(
                    415, f"unsupported media type {content_type!r}, {_SUPPORTED}", code_pb2.INVALID_ARGUMENT
                )
            if not self.accepting:
                raise _Rejected(503, "the agent is shutting down", code_pb2.UNAVAILABLE, {"Retry-After": "5"})
            body = await self._read(request)
            loop = asyncio.get_running_loop()
            try:
                rows, count = await loop.run_in_executor(
                    self._pool, decode, body, request.headers.get("Content-Encoding"), content_type
                )
            except PayloadTooLarge as exc:
                raise _Rejected(413, str(exc), code_pb2.RESOURCE_EXHAUSTED) from None
            except PayloadError as exc:
                raise _Rejected(400, str(exc), code_pb2.INVALID_ARGUMENT) from None
            except ValueError as exc:  # unsupported Content-Encoding
                raise _Rejected(415, str(exc), code_pb2.INVALID_ARGUMENT) from None
            if rows and not self._sink(rows):
                if unit == "spans":
                    self.stats.spans_refused_busy += count
                raise _Rejected(
                    503, "the agent's queue is full; retry later", code_pb2.UNAVAILABLE, {"Retry-After": "1"}
                )
        except _Rejected as rejected:
            self.stats.requests[(request.path, rejected.status)] += 1
            if rejected.status >= 500:
                logger.debug("llmpulse agent: %s %s: %s", rejected.status, request.path, rejected)
            else:
                logger.info("llmpulse agent: rejected %s with %s: %s", request.path, rejected.status, rejected)
            return _status_response(rejected, as_json)
        if unit == "spans":
            self.stats.spans_accepted += count
        else:
            self.stats.data_points_accepted += count
        self.stats.requests[(request.path, 200)] += 1
        return _message_response(response_type(), as_json)

    def _check_auth(self, request: web.Request) -> None:
        if self._auth is None:
            return
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self._auth):
            raise _Rejected(
                401, "missing or wrong bearer token", code_pb2.UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"}
            )

    async def _read(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _Rejected(
                413,
                f"body of {length} bytes is over the limit of {self.max_body_bytes} bytes",
                code_pb2.RESOURCE_EXHAUSTED,
            )
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _Rejected(
                413, f"body is over the limit of {self.max_body_bytes} bytes", code_pb2.RESOURCE_EXHAUSTED
            ) from None

    # --- decoding (worker threads) ---------------------------------------------------------------

    def _decode_traces(self, body: bytes, encoding: str | None, content_type: str) -> tuple[list[EncodedRows], int]:
        request = parse_traces(decompress(body, encoding, self.max_body_bytes), content_type)
        rows = trace_rows(request, prices=self._prices, on_unpriced=self._count_unpriced)
        return ([rows] if rows.count else []), rows.count

    def _decode_metrics(self, body: bytes, encoding: str | None, content_type: str) -> tuple[list[EncodedRows], int]:
        request = parse_metrics(decompress(body, encoding, self.max_body_bytes), content_type)
        return metric_rows(request), data_point_count(request)

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
