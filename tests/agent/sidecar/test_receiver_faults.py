"""Load and faults on the OTLP receiver: backpressure, a store outage under load, fuzzed payloads.

Every span the receiver answered 200 for must be stored exactly once; every span it refused must
have been refused to the client (which then retries or reports the failure). Nothing in between.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from .sidecar_harness import running_sidecar, wait_for
from .test_receiver import PROTOBUF, count, make_spans


def _send_from_threads(url: str, threads: int, exports: int, spans_per_export: int) -> list[SpanExportResult]:
    results: list[SpanExportResult] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=60)
        for _ in range(exports):
            result = exporter.export(make_spans(spans_per_export, service=f"load-{index}"))
            with lock:
                results.append(result)
        exporter.shutdown()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return results


def test_bounded_load_with_backpressure_stores_every_span_exactly_once(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    # A queue smaller than what four clients send at once: some requests get 503 and are retried.
    with running_sidecar(store_dsn, database, tmp_path, max_queue_size=600, batch_size=300) as sidecar:
        results = _send_from_threads(sidecar.url, threads=4, exports=8, spans_per_export=150)
        assert results == [SpanExportResult.SUCCESS] * 32
        assert sidecar.flush()
        sent = 4 * 8 * 150
        assert count(ch, database, "otel_traces") == sent
        assert int(ch.query(f"SELECT uniqExact(SpanId) FROM {database}.otel_traces").result_rows[0][0]) == sent
        assert sidecar.metric("llmpulse_received_total", signal="traces") == sent
        stats = sidecar.sidecar.pipeline.snapshot()
        assert (stats.exported, stats.dropped, stats.spool_records) == (sent, 0, 0)


def test_store_outage_during_load_spools_then_replays_with_exact_counts(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        first = _send_from_threads(sidecar.url, threads=2, exports=3, spans_per_export=100)
        assert sidecar.flush()
        ch.command(f"DETACH TABLE {database}.otel_traces")  # the store refuses writes: a real engine error
        try:
            during = _send_from_threads(sidecar.url, threads=2, exports=5, spans_per_export=100)
            assert wait_for(lambda: sidecar.sidecar.pipeline.snapshot().spool_records == 1000)
            assert sidecar.get("/readyz").status == 503
            assert sidecar.metric("llmpulse_spool_records") == 1000
        finally:
            ch.command(f"ATTACH TABLE {database}.otel_traces")
        after = _send_from_threads(sidecar.url, threads=2, exports=2, spans_per_export=100)
        assert all(r == SpanExportResult.SUCCESS for r in first + during + after)
        assert wait_for(lambda: sidecar.sidecar.pipeline.snapshot().spool_records == 0)
        assert sidecar.flush()
        assert sidecar.get("/readyz").status == 200

        assert count(ch, database, "otel_traces") == 600 + 1000 + 400
        assert int(ch.query(f"SELECT uniqExact(SpanId) FROM {database}.otel_traces").result_rows[0][0]) == 2000
        stats = sidecar.sidecar.pipeline.snapshot()
        # rows arriving while older ones still wait in the spool queue behind them (order is kept)
        assert stats.spooled >= 1000 and stats.replayed == stats.spooled
        assert (stats.exported, stats.dropped) == (2000, 0)


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes ids as base64; OTLP/JSON wants hex."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def _mutations(payload: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(60):
        data = bytearray(payload)
        kind = rng.randrange(4)
        if kind == 0:  # truncated anywhere
            data = data[: rng.randrange(len(data))]
        elif kind == 1:  # bytes flipped
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:  # a chunk duplicated or spliced elsewhere
            start = rng.randrange(len(data))
            chunk = data[start : start + rng.randint(1, 64)]
            at = rng.randrange(len(data))
            data[at:at] = chunk
        else:  # random garbage of a random size
            data = bytearray(rng.randbytes(rng.randint(0, 4096)))
        out.append(bytes(data))
    return out


@pytest.mark.parametrize("encoding", ["protobuf", "json", "gzip"])
def test_fuzzed_payloads_never_crash_and_are_never_half_written(
    store_dsn: str, database: str, tmp_path: Path, ch: Any, encoding: str
) -> None:
    from google.protobuf import json_format

    apply(ch, SchemaOptions(database=database))
    rng = random.Random(20261130)
    request = encode_spans(make_spans(20))
    if encoding == "json":
        body = json.dumps(_hex_ids(json_format.MessageToDict(request))).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body = request.SerializeToString()
        headers = dict(PROTOBUF)
    bodies = _mutations(body, rng)
    if encoding == "gzip":  # damaged content inside valid gzip, and damaged gzip around valid content
        whole = gzip.compress(body)
        bodies = [gzip.compress(b) for b in bodies[:40]] + _mutations(whole, rng)[:20]
        headers["Content-Encoding"] = "gzip"
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        statuses = []
        for mutated in bodies:
            answer = sidecar.post("/v1/traces", mutated, headers)
            statuses.append(answer.status)
            assert answer.status in (200, 400), answer.data[:200]
        assert sidecar.get("/healthz").status == 200
        assert sidecar.flush()
        accepted = sidecar.sidecar.receiver.stats.spans_accepted
        # all or nothing per request: the store holds exactly the spans of the requests answered 200
        assert count(ch, database, "otel_traces") == accepted
        assert statuses.count(400) > 0 and statuses.count(200) > 0
        stats = sidecar.sidecar.pipeline.snapshot()
        assert stats.exported + stats.dropped == accepted
