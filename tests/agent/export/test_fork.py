"""fork(): a child gets a fresh pipeline; with an embedded store its batches reach the store through the spool."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.conftest import PYTHON

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from llmpulse import agent
    from llmpulse.agent.store.dsn import parse_dsn

    store, spool = sys.argv[1], sys.argv[2]
    agent.configure(store, spool_dir=spool, flush_interval=0.05)

    @agent.observe(kind="chain")
    def work(who, i):
        return i

    work("parent-before", 0)
    pid = os.fork()
    if pid == 0:
        for i in range(25):
            work("child", i)
        ok = agent.flush(30)
        s = agent.stats()
        agent.shutdown(10)
        sys.stdout.write(json.dumps({"child_flush": ok, "child_spooled": s.spooled, "child_enqueued": s.enqueued}) + "\\n")
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    work("parent-after", 1)
    agent.flush(30)
    client = parse_dsn(store).client()
    rows = client.query(
        "SELECT JSONExtractString(SpanAttributes['llmpulse.input'], 'who') AS who, count() FROM llmpulse.otel_traces "
        "GROUP BY who ORDER BY who"
    ).result_rows
    print(json.dumps({"status": status, "rows": rows, "parent": agent.stats().replayed}))
    agent.shutdown()
    """
)


def test_forked_child_records_reach_the_embedded_store(tmp_path, python_env) -> None:
    result = subprocess.run(
        [PYTHON, "-c", SCRIPT, f"chdb://{tmp_path / 'store'}", str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        env=python_env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    child, parent = lines[0], lines[-1]
    assert child["child_enqueued"] == 25 and child["child_spooled"] == 25, "the child spools; it cannot open the store"
    assert parent["status"] == 0
    assert dict(parent["rows"]) == {"child": 25, "parent-after": 1, "parent-before": 1}
    assert parent["parent"] >= 25, "the parent replayed the child's batches (and queued its own behind them)"
