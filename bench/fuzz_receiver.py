"""A bounded fuzz of the running OTLP receiver: mutated protobuf, JSON and gzip bodies.

Asserts no 5xx (503 excepted: backpressure), the agent stays up, and the spans stored equal the spans
of the requests answered 200. Every fuzzed trace gets its own trace id so stored rows count exactly.
Spans older than the traces TTL (a start time of 0 or 1 ns is valid OTLP) are counted apart: ClickHouse
drops a part whose rows have all expired as it is written, so how many of them remain depends on
which spans shared an insert.

    python bench/fuzz_receiver.py --bodies 10000 --seed 1

tests/agent/sidecar/test_fuzz_receiver.py runs a few hundred bodies of the same generator in CI.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import urllib3
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CONTENT_TYPES = ["application/x-protobuf", "application/json", "text/plain", "application/json; charset=utf-8", ""]
ENCODINGS = [None, None, "gzip", "deflate", "br", "GZIP", "identity"]
# 2**32 * 10**9 ns: just past what DateTime holds (2106); 7258118400 * 10**9: 2200-01-01;
# 4102444800 * 10**9: 2100-01-01, the latest span start the agent takes
BIG = [0, 1, -1, 2**32 * 10**9, 7258118400 * 10**9, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), 10**400]
TTL_DAYS = 30  # SchemaOptions.traces_ttl_days, the agent's default


def _request(rng: random.Random, serial: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    now = time.time_ns()
    for i in range(rng.randint(1, 5)):
        span = scope.spans.add()
        span.trace_id = serial.to_bytes(8, "big") + rng.randbytes(8)
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = f"fuzz {serial}"
        span.kind = rng.choice([0, 1, 2, 3, 99])
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + rng.randint(0, 10**9)
        attr = span.attributes.add()
        attr.key = "gen_ai.usage.input_tokens"
        attr.value.int_value = rng.randint(0, 10**6)
        model = span.attributes.add()
        model.key = "gen_ai.request.model"
        model.value.string_value = "gpt-4o-mini"
        if rng.random() < 0.1:  # JSON has no NaN: protobuf carries it to the row encoder
            odd = span.attributes.add()
            odd.key = "gen_ai.request.temperature"
            odd.value.double_value = rng.choice([float("nan"), float("inf"), -float("inf"), 1e308])
        if rng.random() < 0.05:
            span.start_time_unix_nano = rng.choice(
                [0, 1, 4102444800 * 10**9, 4102444800 * 10**9 + 1, 2**32 * 10**9 - 1, 7258118400 * 10**9]
            )
            span.end_time_unix_nano = max(span.start_time_unix_nano, span.end_time_unix_nano)
    return request


def _to_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId"):
                    span[key] = base64.b64decode(span[key]).hex()
    return document


def _mutate_json(rng: random.Random, document: dict[str, Any]) -> bytes:
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    choice = rng.randrange(6)
    if choice == 0:
        spans[0][rng.choice(["startTimeUnixNano", "endTimeUnixNano"])] = str(rng.choice(BIG))
    elif choice == 1:
        spans[0]["attributes"][0]["value"] = {"intValue": str(rng.choice(BIG))}
    elif choice == 2:
        depth = rng.choice([10, 100, 300, 2000])
        text = json.dumps(document)
        deep = '{"arrayValue": {"values": [' * depth + '{"stringValue": "x"}' + "]}}" * depth
        return text.replace('{"stringValue": "gpt-4o-mini"}', deep, 1).encode()
    elif choice == 3:
        spans[0]["name"] = rng.choice(["\x00nul", "é" * 50, "x" * 10_000])
    elif choice == 4:
        spans[0]["kind"] = rng.choice([7, -1, "SPAN_KIND_SERVER", 2**40])
    text = json.dumps(document).encode()
    if choice == 5 and text:
        cut = rng.randrange(len(text))
        text = text[:cut] + bytes([rng.randrange(256)]) + text[cut + 1 :]
    return text


def _mutate_bytes(rng: random.Random, data: bytes, other: bytes) -> bytes:
    choice = rng.randrange(5)
    if not data:
        return data
    if choice == 0:  # bit flips
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if choice == 1:  # truncation
        return data[: rng.randrange(len(data))]
    if choice == 2:  # splice
        return data[: rng.randrange(len(data))] + other[rng.randrange(len(other) or 1) :]
    if choice == 3:  # trailing garbage
        return data + rng.randbytes(rng.randint(1, 16))
    return data  # unchanged


def make_body(rng: random.Random, serial: int) -> tuple[bytes, dict[str, str]]:
    """One fuzzed request: body and headers."""
    request = _request(rng, serial)
    other = _request(rng, serial).SerializeToString()
    content_type = rng.choice(CONTENT_TYPES[:2] * 4 + CONTENT_TYPES[2:])
    if content_type.startswith("application/json"):
        body = _mutate_json(rng, _to_json(request))
    else:
        body = request.SerializeToString()
        if rng.random() < 0.6:
            body = _mutate_bytes(rng, body, other)
    encoding = rng.choice(ENCODINGS)
    if encoding and encoding.lower() == "gzip":
        body = gzip.compress(body)
        if rng.random() < 0.3:
            body += gzip.compress(other) if rng.random() < 0.5 else rng.randbytes(4)
        if rng.random() < 0.3:
            body = _mutate_bytes(rng, body, other)
    elif encoding == "deflate":
        import zlib

        body = zlib.compress(body)
    headers = {"Content-Type": content_type} if content_type else {}
    if encoding:
        headers["Content-Encoding"] = encoding
    return body, headers


def _accepted_spans(body: bytes, headers: dict[str, str]) -> tuple[int, int]:
    """How many spans an accepted request held, and how many of them start before the TTL cutoff.

    Decoded independently: the standard library's json and opentelemetry-proto.
    """
    import zlib

    encoding = headers.get("Content-Encoding", "identity").lower()
    if encoding == "gzip":
        data, rest = b"", body
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data += inflater.decompress(rest)
            rest = inflater.unused_data
    elif encoding == "deflate":
        data = zlib.decompress(body)
    else:
        data = body
    cutoff = (time.time() - TTL_DAYS * 86400) * 1e9
    if headers.get("Content-Type", "").startswith("application/json"):
        document = json.loads(data)
        spans = [
            sp for r in document.get("resourceSpans", []) for s in r.get("scopeSpans", []) for sp in s.get("spans", [])
        ]
        return len(spans), sum(1 for sp in spans if int(sp.get("startTimeUnixNano", 0)) < cutoff)
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError:
        return -1, 0
    starts = [sp.start_time_unix_nano for r in request.resource_spans for s in r.scope_spans for sp in s.spans]
    return len(starts), sum(1 for start in starts if start < cutoff)


def fuzz(post: Callable[[bytes, dict[str, str]], int], bodies: int, seed: int) -> dict[str, Any]:
    """Send ``bodies`` fuzzed requests through ``post`` (returns the status); the figures."""
    rng = random.Random(seed)
    statuses: Counter = Counter()
    acknowledged = expired = 0
    started = time.monotonic()
    for serial in range(bodies):
        body, headers = make_body(rng, serial)
        status = post(body, headers)
        statuses[status] += 1
        assert status < 500 or status == 503, f"body {serial} got {status}: headers {headers}, {body[:80]!r}"
        if status == 200:
            spans, old = _accepted_spans(body, headers)
            acknowledged += spans
            expired += old
    elapsed = time.monotonic() - started
    return {
        "bodies": bodies,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "acknowledged_spans": acknowledged,
        "acknowledged_spans_past_ttl": expired,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(bodies / elapsed, 1),
    }


STORED_SQL = (
    "SELECT countIf(toDateTime(Timestamp) + toIntervalDay({ttl}) > now()), "
    "countIf(toDateTime(Timestamp) + toIntervalDay({ttl}) <= now()) FROM {db}.otel_traces"
)


def stored_spans(client: Any, database: str) -> tuple[int, int]:
    """Spans stored within the TTL, and those stored past it (not yet dropped)."""
    row = client.query(STORED_SQL.format(ttl=TTL_DAYS, db=database)).result_rows[0]
    return int(row[0]), int(row[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bodies", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="llmpulse-fuzz-")
    dsn = f"chdb://{workdir}/store"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMPULSE_", "OTEL_"))}
    cmd = [sys.executable, "-m", "llmpulse.agent.cli", "agent", "--host", "127.0.0.1", "--port", str(port)]
    agent = subprocess.Popen([*cmd, "--gpu", "off", "--dsn", dsn], cwd=workdir, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager(maxsize=2, retries=False)
    try:
        for _ in range(600):
            try:
                if http.request("GET", url + "/healthz", timeout=1).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.2)

        def post(body: bytes, headers: dict[str, str]) -> int:
            return http.request("POST", url + "/v1/traces", body=body, headers=headers, timeout=60).status

        figures = fuzz(post, args.bodies, args.seed)
        assert http.request("GET", url + "/healthz").status == 200, "the agent is down"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
    from llmpulse.agent.store.dsn import parse_dsn

    client = parse_dsn(dsn).client()
    figures["stored_spans"], figures["stored_spans_past_ttl"] = stored_spans(client, "llmpulse")
    dead = os.path.join(workdir, ".llmpulse", "spool", "dead")
    figures["dead_letter_files"] = len(os.listdir(dead)) if os.path.isdir(dead) else 0
    figures["command"] = f"python bench/fuzz_receiver.py --bodies {args.bodies} --seed {args.seed}"
    print(json.dumps(figures, indent=2))
    live = figures["acknowledged_spans"] - figures["acknowledged_spans_past_ttl"]
    assert figures["stored_spans"] == live, "acknowledged spans were lost"
    assert figures["stored_spans_past_ttl"] <= figures["acknowledged_spans_past_ttl"]
    assert figures["dead_letter_files"] == 0, "the store refused rows the decoder accepted"


if __name__ == "__main__":
    main()
