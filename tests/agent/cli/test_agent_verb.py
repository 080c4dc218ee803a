"""``llmpulse agent`` run as a user runs it: a subprocess owning its embedded store, stopped by SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import urllib3
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.agent.sidecar.test_receiver import make_spans
from tests.conftest import PYTHON

from .test_cli import _cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen) -> None:
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"agent exited with {process.returncode}: {process.stderr.read()}")
        try:
            if http.request("GET", url + "/healthz", timeout=2).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("agent did not become healthy")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "abc"], "llmpulse: error: port (from --port) must be a whole number, got 'abc'"),
        (["--scrape", "localhost:8000"], "scrape (from --scrape) must list http(s) URLs"),
        (["--config", "missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["--dsn", "chdb://"], "llmpulse: error: dsn"),
    ],
)
def test_bad_agent_options_get_a_clear_message(tmp_path: Path, python_env, args: list[str], message: str) -> None:
    result = _cli(["agent", *args], python_env, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_flushes_and_exits_zero_and_a_second_agent_is_told_the_store_is_taken(
    tmp_path: Path, python_env
) -> None:
    port = _free_port()
    agent = subprocess.Popen(
        [PYTHON, "-m", "llmpulse.agent.cli", "agent", "--host", "127.0.0.1", "--port", str(port), "--gpu", "off"],
        cwd=tmp_path,
        env={**python_env, "LLMPULSE_FLUSH_INTERVAL": "30"},  # nothing is written before SIGTERM asks for it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, agent)
        exporter = OTLPSpanExporter(endpoint=url + "/v1/traces")
        assert exporter.export(make_spans(25)) == SpanExportResult.SUCCESS
        second = _cli(["agent", "--port", str(_free_port()), "--gpu", "off"], python_env, tmp_path)
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, stderr
    assert "stopped; 25 rows stored, 0 spooled for later, 0 dropped" in stderr
    assert second.returncode == 1 and "is already open in another process" in second.stderr
    written = [p for p in (tmp_path / ".llmpulse").rglob("*") if not p.is_symlink()]
    assert written, "the agent wrote its store, spool and log under .llmpulse"
    loose = [str(p) for p in written if p.lstat().st_mode & 0o077]
    assert not loose, f"files holding prompts readable by other users: {loose[:5]}"

    stored = subprocess.run(
        [
            PYTHON,
            "-c",
            "from llmpulse.agent.store.dsn import parse_dsn\n"
            "c = parse_dsn(None).client()\n"
            "print(c.query('SELECT count() FROM llmpulse.otel_traces').result_rows[0][0])",
        ],
        cwd=tmp_path,
        env=python_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stored.stdout.strip() == "25", stored.stderr
