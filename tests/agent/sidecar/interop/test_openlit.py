"""OpenLIT as a client of ``llmpulse agent``: its streams get a time to first token, its logs are accepted.

OpenLIT pins openai < 3 and the project's environment has openai 3, so OpenLIT lives in an environment
of its own (the ``interop-openlit`` extra; .ci/run makes it at ``.venv-openlit``) and the client runs there
as a subprocess (``openlit_client.py``), exporting OTLP/HTTP to a sidecar in this process. The test skips,
saying why, when that environment is missing. ``$LLMPULSE_OPENLIT_PYTHON`` names another interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.store.schema import SchemaOptions, apply

from tests.agent.sidecar.sidecar_harness import running_sidecar

from .calls import assert_calls, read_calls

REPO = Path(__file__).resolve().parents[4]
CLIENT = Path(__file__).with_name("openlit_client.py")


def _openlit_python() -> str:
    python = os.environ.get("LLMPULSE_OPENLIT_PYTHON") or str(REPO / ".venv-openlit" / "bin" / "python")
    if not Path(python).exists():
        pytest.skip(f"no OpenLIT environment at {python} (.ci/run makes it: pip install '.[interop-openlit]')")
    return python


@pytest.fixture
def sidecar(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> Iterator[Any]:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as running:
        yield running


@pytest.mark.slow
def test_openlit_streams_have_time_to_first_token_and_its_logs_are_stored(
    sidecar: Any, ch: Any, database: str, tmp_path: Path
) -> None:
    python = _openlit_python()
    pricing = tmp_path / "pricing.json"
    pricing.write_text("{}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [python, str(CLIENT), sidecar.url, "openlit-app", str(pricing)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    assert versions["openlit"] and versions["openai"].startswith("2."), versions
    assert sidecar.flush()

    assert_calls(read_calls(ch, database, "openlit-app"))
    timings = ch.query(
        f"SELECT toFloat64OrNull(SpanAttributes['gen_ai.server.time_to_first_token']),"
        f" toFloat64OrNull(SpanAttributes['gen_ai.server.time_per_output_token'])"
        f" FROM {database}.otel_traces WHERE SpanAttributes['gen_ai.request.stream'] = 'true'"
    ).result_rows
    assert len(timings) == 1 and timings[0][0] > 0 and timings[0][1] > 0, "OpenLIT's timings are kept as sent"
    assert sidecar.metric("llmpulse_http_requests_total", path="/v1/logs", code="200") >= 1
    assert sidecar.metric("llmpulse_http_requests_total", path="/v1/traces", code="200") >= 1
    logs = ch.query(
        f"SELECT EventName, ScopeName, LogAttributes['gen_ai.request.model'], LogAttributes['gen_ai.output.messages']"
        f" FROM {database}.otel_logs WHERE ServiceName = 'openlit-app' ORDER BY Timestamp"
    ).result_rows
    assert [row[:3] for row in logs] == [
        ("gen_ai.client.inference.operation.details", "openlit.instrumentation.openai", "gpt-4o-mini")
    ] * 2
    assert "The capital of France is Paris." in logs[0][3]
