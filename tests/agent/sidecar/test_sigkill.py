"""A writer killed with SIGKILL while the store is down loses nothing that reached its spool."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.conftest import PYTHON

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import sys
    from llmpulse import agent
    from llmpulse.agent.store.dsn import parse_dsn

    store, spool = sys.argv[1], sys.argv[2]
    agent.configure(store, spool_dir=spool, batch_size=50, flush_interval=0.05)
    admin = parse_dsn(store).client()
    admin.command("DETACH TABLE llmpulse.otel_traces")  # the store goes down for this process

    @agent.observe(kind="chain")
    def step(i):
        return i

    i = 0
    while True:
        for _ in range(100):
            step(i)
            i += 1
        agent.flush(30)
        print("spooled-through", i - 1, flush=True)
    """
)

REPLAYER = textwrap.dedent(
    """
    import json, sys
    from llmpulse import agent
    from llmpulse.agent.store.dsn import parse_dsn

    store, spool = sys.argv[1], sys.argv[2]
    agent.configure(store, spool_dir=spool, flush_interval=0.05)  # the table is attached again after restart
    ok = agent.flush(60)
    client = parse_dsn(store).client()
    seqs = [r[0] for r in client.query(
        "SELECT toInt64(JSONExtractInt(SpanAttributes['llmpulse.input'], 'i')) FROM llmpulse.otel_traces"
    ).result_rows]
    s = agent.stats()
    print(json.dumps({"ok": ok, "seqs": seqs, "replayed": s.replayed, "spool_records": s.spool_records}))
    agent.shutdown()
    """
)


def _spooled_records(spool: Path) -> int:
    return sum(int(p.name.split(".")[0].rpartition("-")[2]) for p in spool.glob("*.batch.json"))


def test_sigkill_mid_run_then_restart_loses_nothing_from_the_spool(tmp_path: Path, python_env) -> None:
    store, spool = f"chdb://{tmp_path / 'store'}", tmp_path / "spool"
    writer = subprocess.Popen(
        [PYTHON, "-c", WRITER, store, str(spool)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env,
    )
    confirmed = -1
    try:
        deadline = time.monotonic() + 120
        while confirmed < 700 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            if line.startswith("spooled-through"):
                confirmed = int(line.split()[1])
        assert confirmed >= 700, f"writer made no progress: {writer.stderr.read() if writer.poll() is not None else ''}"
        time.sleep(0.05)  # land the kill while the writer is mid-way through more calls and spool writes
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == -signal.SIGKILL
    in_spool = _spooled_records(spool)
    assert in_spool >= confirmed + 1

    result = subprocess.run(
        [PYTHON, "-c", REPLAYER, store, str(spool)], capture_output=True, text=True, env=python_env, timeout=180
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    seqs = report["seqs"]
    assert report["ok"] and report["spool_records"] == 0
    assert len(seqs) == len(set(seqs)) == in_spool, "every spooled record stored exactly once"
    assert set(range(confirmed + 1)) <= set(seqs), "everything the writer confirmed as spooled is in the store"
    assert report["replayed"] == in_spool
    assert not list(spool.glob("*.tmp")), "torn writes from the killed process were cleaned up"


# --- the sidecar: a 200 means the request is in the write-ahead log ------------------------------

KILLS = 5
CLIENTS = 3
SPANS_PER_REQUEST = 50
AGENT = [PYTHON, "-m", "llmpulse.agent.cli", "agent", "--host", "127.0.0.1", "--gpu", "off", "--flush-interval", "0.2"]
AGENT += ["--batch-size", "2000", "--shutdown-timeout", "120"]

COUNTER = textwrap.dedent(
    """
    import json, sys
    from llmpulse.agent.store.dsn import parse_dsn

    client = parse_dsn(sys.argv[1]).client()
    rows = client.query("SELECT SpanId, count() FROM llmpulse.otel_traces GROUP BY SpanId").result_rows
    print(json.dumps({"ids": [r[0] for r in rows], "rows": sum(r[1] for r in rows)}))
    """
)


def _otlp_request(ids: range) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    start = time.time_ns()
    spans = [
        Span(
            trace_id=(i // 10 + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name="chat gpt-4o-mini",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 1_000_000,
            attributes=[
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=100)),
            ],
        )
        for i in ids
    ]
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="killed")))
    return ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString()


class _Agent:
    """``llmpulse agent`` in a subprocess on 127.0.0.1; stderr is read on a thread so it never blocks."""

    def __init__(self, workdir: Path, port: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [*AGENT, "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines[-30:])
            assert time.monotonic() < deadline, f"no {text!r} in the agent's log: {''.join(self.lines[-30:])}"
            time.sleep(0.05)


def _load(url: str, next_id: list[int], stop: Any, acked: set[int], unanswered: set[int], lock: Any) -> None:
    """One client: 50-span requests with fresh span ids until the agent dies; 503s are retried."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=30))
    while not stop.is_set():
        with lock:
            ids = range(next_id[0], next_id[0] + SPANS_PER_REQUEST)
            next_id[0] += SPANS_PER_REQUEST
        body = _otlp_request(ids)
        while True:
            try:
                answer = http.request(
                    "POST", url + "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
                )
            except urllib3.exceptions.HTTPError:
                with lock:
                    unanswered.update(i + 1 for i in ids)  # in flight when the agent died: may or may not be stored
                return
            if answer.status == 200:
                with lock:
                    acked.update(i + 1 for i in ids)
                break
            assert answer.status == 503, answer.status
            time.sleep(0.05)


def test_sidecar_sigkill_at_random_instants_loses_no_acknowledged_span_and_duplicates_none(
    tmp_path: Path, python_env
) -> None:
    rng = random.Random(os.environ.get("LLMPULSE_SIGKILL_SEED", "10"))
    acked: set[int] = set()
    unanswered: set[int] = set()
    lock = threading.Lock()
    next_id = [0]
    http = urllib3.PoolManager(retries=False)
    for _ in range(KILLS):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        agent = _Agent(tmp_path, port, python_env)
        url = f"http://127.0.0.1:{port}"
        try:
            agent.wait_for_line("write-ahead log replayed")  # what the previous run left is queued again
            stop = threading.Event()
            clients = [
                threading.Thread(target=_load, args=(url, next_id, stop, acked, unanswered, lock))
                for _ in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            time.sleep(rng.uniform(1.0, 4.0))  # a random instant under load
            os.kill(agent.process.pid, signal.SIGKILL)
            agent.process.wait(30)
            stop.set()
            for client in clients:
                client.join(60)
        finally:
            if agent.process.poll() is None:
                agent.process.kill()
        assert agent.process.returncode == -signal.SIGKILL
    assert len(acked) > KILLS * CLIENTS * SPANS_PER_REQUEST, "the clients got answers before each kill"

    # Restart on the same store, WAL and spool; let it replay, then stop it cleanly.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    agent = _Agent(tmp_path, port, python_env)
    try:
        agent.wait_for_line("write-ahead log replayed")
        agent.process.send_signal(signal.SIGTERM)
        assert agent.process.wait(180) == 0, "".join(agent.lines[-30:])
    finally:
        if agent.process.poll() is None:
            agent.process.kill()
    http.clear()

    result = subprocess.run(
        [PYTHON, "-c", COUNTER, f"chdb://{tmp_path / '.llmpulse' / 'store'}"],
        capture_output=True,
        text=True,
        env=python_env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    stored = {int(i, 16) for i in report["ids"]}
    print(
        f"sidecar SIGKILL x{KILLS}: acknowledged {len(acked)}, stored {report['rows']} rows "
        f"({len(stored)} distinct), unanswered at the kills {len(unanswered)}"
    )
    assert report["rows"] == len(stored), "no span stored twice"
    assert acked <= stored, f"{len(acked - stored)} acknowledged spans lost"
    assert stored - acked <= unanswered, "the only unacknowledged spans stored are those in flight at a kill"
