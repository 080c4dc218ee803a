"""The llmpulse command line, run as a user would (a subprocess per run: one chDB path per process)."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import PYTHON

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "llmpulse.agent.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_demo_on_the_embedded_default(tmp_path: Path, python_env) -> None:
    result = _cli(["demo", "--calls", "24"], python_env, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "SIMULATED" in out
    assert f"chdb://{tmp_path}/.llmpulse/store" in out
    assert "gpt-4o-mini" in out and "claude-3-5-haiku" in out
    assert "LLM calls read back from ClickHouse" in out and "Feedback rows:" in out
    assert "0 dropped" in out
    assert (tmp_path / ".llmpulse" / "store").is_dir()
    # the second phase's drift, made-up answers and injections are found by the analyzers
    for alert in ("ALERT drift/prompt_embedding", "ALERT hallucination/", "ALERT injection/", "ALERT quality/"):
        assert alert in out, out
    report = tmp_path / "llmpulse-report.html"
    assert f"Report: {report}" in out
    assert report.stat().st_size > 10_000
    html = report.read_text()
    assert "drift" in html and "hallucination" in html  # the alert list names what the analyzers found
    _the_report_draws_its_charts_in_a_real_browser(report, tmp_path)
    _sessions_users_and_the_feedback_export_work_on_the_demo_store(python_env, tmp_path)
    # a second run on the same store adds to it and still works (schema migrations are idempotent)
    again = _cli(["demo", "--calls", "4", "--support-calls", "0", "--no-analyze", "--no-report"], python_env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Report:" not in again.stdout and "Running the analyzers" not in again.stdout


def _the_report_draws_its_charts_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    from tests.dashboards.headless import find_chromium, load_page
    from tests.dashboards.test_report import FACTS

    chromium = find_chromium()
    if chromium is None:
        return  # tests/dashboards/test_report.py says why it skips; the page itself was checked above
    run = load_page(chromium, report, FACTS, tmp_path / "profile")
    assert run.console_errors == []
    drawn = [chart for chart in run.facts["charts"] if chart["drawn"] > 0]
    assert len(drawn) >= 10, run.facts["charts"]
    (tmp_path / "demo-report.png").write_bytes(run.screenshot)
    # The run's short span is drawn across the axis (not as dots at the right edge of a one-hour axis)
    # and "requests per second" counts per second of that span.
    calls = {c["panel"]: c for c in drawn if c["panel"].startswith("llmpulse-llm-overview-") and c["viewBox"] == 600}
    assert len(calls) >= 6
    left, plot = 62, 600 - 62 - 10  # the line chart's plot area, in its viewBox units
    for chart in calls.values():  # every series starts in the left half (TTFT: the streamed calls only)
        assert (chart["left"] - left) / plot < 0.5, chart
    for key in ("requests_by_model", "latency_quantiles"):  # series of every call span the axis
        chart = calls[f"llmpulse-llm-overview-{key}"]
        assert (chart["right"] - chart["left"]) / plot > 0.8, chart
    rps = float(run.facts["rps"].split()[0])
    assert rps > 1, run.facts["rps"]  # about 300 calls over the run's seconds; 0.08 req/s over an hour
    assert any(span.startswith("Drawn over the data: ") for span in run.facts["spans"])


def _sessions_users_and_the_feedback_export_work_on_the_demo_store(env: dict[str, str], cwd: Path) -> None:
    sessions = _cli(["sessions", "--sort", "feedback", "--format", "jsonl"], env, cwd)
    assert sessions.returncode == 0, sessions.stderr
    rows = [json.loads(line) for line in sessions.stdout.splitlines()]
    assert rows and all(r["id"].startswith("session-") for r in rows)
    assert rows[0]["mean_score"] is not None and rows[0]["feedback"] > 0  # the demo records feedback
    shown = _cli(["sessions", "show", rows[0]["id"]], env, cwd)
    assert shown.returncode == 0 and shown.stdout.startswith(f"session {rows[0]['id']} · service llmpulse-demo")
    users = _cli(["users", "--sort", "cost", "--limit", "100"], env, cwd)
    assert users.returncode == 0 and "user-" in users.stdout and "customer-" in users.stdout
    sft = _cli(["export", "feedback", "--format", "sft", "--out", "sft.jsonl"], env, cwd)
    assert sft.returncode == 0 and "SFT example(s) to sft.jsonl" in sft.stdout, sft.stderr
    examples = [json.loads(line) for line in (cwd / "sft.jsonl").read_text().splitlines()]
    assert examples and all(e["messages"][-1]["role"] == "assistant" for e in examples)
    dpo = _cli(["export", "feedback", "--format", "dpo", "--out", "dpo.jsonl"], env, cwd)
    assert dpo.returncode in (0, 4) and ("DPO pair(s)" in dpo.stdout or "made a DPO pair: " in dpo.stderr)
    golden = _cli(["references", "add-from-calls", "--dataset", "demo-golden"], env, cwd)
    assert golden.returncode == 0 and "reference item(s) to demo-golden" in golden.stdout, golden.stderr


def test_schema_apply_then_up_to_date(tmp_path: Path, python_env) -> None:
    dsn = f"chdb://{tmp_path}/s"
    first = _cli(["schema", "apply", "--dsn", dsn, "--database", "obs"], python_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "applied migration 1" in first.stdout and "applied migration 2" in first.stdout
    second = _cli(
        ["schema", "apply", "--dsn", dsn, "--database", "obs", "--traces-ttl-days", "3", "--set-ttl"],
        python_env,
        tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert "is up to date" in second.stdout and "toIntervalDay(3)" in second.stdout


def test_schema_print_cluster(tmp_path: Path, python_env) -> None:
    result = _cli(["schema", "print", "--cluster", "prod"], python_env, tmp_path)
    assert result.returncode == 0
    assert 'ON CLUSTER "prod"' in result.stdout and "Distributed('prod'" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schema", "apply", "--dsn", "redis://u:topsecret@h/1"], "unsupported scheme 'redis'"),
        (["schema", "apply", "--dsn", "chdb:///tmp/x", "--database", "no-dashes"], "database name 'no-dashes'"),
        (["demo", "--calls", "0"], "argument --calls: must be at least 1"),
        (["demo", "--support-calls", "-3"], "argument --support-calls: must be 0 or more"),
        (["schema", "print", "--traces-ttl-days", "soon"], "must be a whole number of days"),
        (["schema", "print", "--cluster", "a b"], "not a valid ClickHouse identifier"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_gets_a_clear_message(tmp_path: Path, python_env, args, message) -> None:
    result = _cli(args, python_env, tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "topsecret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_bad_environment_is_reported_and_existing_store_untouched(tmp_path: Path, python_env) -> None:
    ok = _cli(["demo", "--calls", "8"], python_env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = _cli(["demo"], {**python_env, "LLMPULSE_SAMPLE_RATE": "2"}, tmp_path)
    assert bad.returncode == 2 and "sample_rate (from $LLMPULSE_SAMPLE_RATE) must be between 0.0 and 1.0" in bad.stderr
    count = subprocess.run(
        [
            PYTHON,
            "-c",
            "from llmpulse.agent.store.dsn import parse_dsn; c=parse_dsn(None).client();"
            "print(c.query('SELECT count() FROM llmpulse.llm_calls').result_rows[0][0])",
        ],
        capture_output=True,
        text=True,
        env=python_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert int(count.stdout.strip()) > 0, "the earlier run's data is still there"


def test_unreachable_server_store_is_a_clear_error(tmp_path: Path, python_env) -> None:
    result = _cli(["schema", "apply", "--dsn", "http://default:pw123@127.0.0.1:1/db"], python_env, tmp_path)
    assert result.returncode == 1
    assert "could not open the store http://***@127.0.0.1:1/db" in result.stderr
    assert "pw123" not in result.stderr


class _OpenAICompatible(BaseHTTPRequestHandler):
    """A local OpenAI-compatible endpoint serving the recorded chat bodies (plain and SSE)."""

    def do_POST(self) -> None:  # http.server names handlers this way
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        name = "openai_chat_stream.sse" if body.get("stream") else "openai_chat_completion.json"
        payload = (FIXTURES / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if body.get("stream") else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_demo_against_an_openai_compatible_endpoint(tmp_path: Path, python_env) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAICompatible)
    server.requests = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = _cli(
            ["demo", "--calls", "8", "--base-url", f"http://127.0.0.1:{server.server_port}/v1", "--model", "my-model"],
            python_env,
            tmp_path,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "OpenAI-compatible endpoint" in result.stdout and "SIMULATED" not in result.stdout
    assert "my-model" in result.stdout
    paths = {path for path, _ in server.requests}  # type: ignore[attr-defined]
    assert paths == {"/v1/chat/completions"}
    assert any(body.get("stream") for _, body in server.requests)  # type: ignore[attr-defined]


def test_demo_base_url_needs_a_model(tmp_path: Path, python_env) -> None:
    result = _cli(["demo", "--base-url", "http://127.0.0.1:9/v1"], python_env, tmp_path)
    assert result.returncode != 0 and "needs --model" in result.stderr


def test_store_open_in_another_process_is_explained(tmp_path: Path, python_env) -> None:
    holder = subprocess.Popen(
        [
            PYTHON,
            "-c",
            "from llmpulse.agent.store.dsn import parse_dsn; import sys, time\n"
            "c = parse_dsn(None).client(); c.command('SELECT 1'); print('ready', flush=True); sys.stdin.read()",
        ],
        cwd=tmp_path,
        env=python_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        demo = _cli(["demo", "--calls", "2"], python_env, tmp_path)
        apply = _cli(["schema", "apply"], python_env, tmp_path)
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert demo.returncode == 2 and "is already open in another process" in demo.stderr
    assert apply.returncode == 1 and "is already open in another process" in apply.stderr
    assert "Traceback" not in demo.stderr + apply.stderr


@pytest.mark.parametrize(
    ("module", "importer", "argv", "extra"),
    [
        ("aiohttp", "llmpulse.agent.sidecar.server", ["agent", "--gpu", "off"], "sidecar"),
        (
            "grafana_client",
            "llmpulse.dashboards.push",
            ["dashboards", "push", "--url", "http://127.0.0.1:9", "--token", "t"],
            "dashboards",
        ),
    ],
)
def test_a_missing_extra_is_named(monkeypatch, capsys, tmp_path: Path, module, importer, argv, extra) -> None:
    import sys

    from llmpulse.agent.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    monkeypatch.delitem(sys.modules, importer, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"needs the '{extra}' extra ({module} is not installed): pip install 'llmpulse[{extra}]'" in err
