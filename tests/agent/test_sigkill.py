"""A writer killed with SIGKILL while the store is down loses nothing that reached its spool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import PYTHON

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import sys
    from llmpulse import agent
    from llmpulse.agent.dsn import parse_dsn

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
    from llmpulse.agent.dsn import parse_dsn

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
