"""The sidecar runs the GPU collector and the serving-engine scraper on their intervals and stores their rows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.store.schema import SchemaOptions, apply

from tests.collectors.nvml_replay import ReplayNvml, load

from .sidecar_harness import running_sidecar, wait_for

SERVING = Path(__file__).resolve().parents[2] / "fixtures" / "serving"


def _count(ch: Any, database: str, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {database}.{table}").result_rows[0][0])


def test_gpu_and_serving_rows_flow_into_the_store(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    pages = [(SERVING / f"vllm_v0_11_scrape{i}.txt").read_text() for i in (1, 2, 3)]
    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> str:
        fetched.append(url)
        if len(fetched) == 2:
            raise ConnectionRefusedError("vLLM is restarting")
        return pages[min(len(fetched), len(pages)) - 1]

    nvml = ReplayNvml(load("a100_pcie_2gpu_mig.json"))
    settings = {
        "gpu": "on",
        "gpu_interval": "50ms",
        "scrape": "http://localhost:8000/metrics",
        "scrape_interval": "50ms",
        "nvml": nvml,
        "fetch": fetch,
    }
    with running_sidecar(store_dsn, database, tmp_path, **settings) as sidecar:
        assert wait_for(lambda: len(fetched) >= 4 and sidecar.sidecar.ticks.ticks.get("gpu", 0) >= 3)
        assert sidecar.flush()
        assert _count(ch, database, "gpu_samples") > 0
        assert _count(ch, database, "gpu_processes") > 0
        assert _count(ch, database, "serving_metrics") > 0
        uuids = {row[0] for row in ch.query(f"SELECT GpuUuid FROM {database}.gpu_samples").result_rows}
        assert {d["nvmlDeviceGetUUID"] for d in nvml.fixture["devices"]} <= uuids
        label = "serving:http://localhost:8000/metrics"
        assert sidecar.metric("llmpulse_collector_tick_seconds_count", collector="gpu") >= 3
        assert sidecar.metric("llmpulse_collector_errors_total", collector=label) >= 1  # the refused scrape
        assert sidecar.metric("llmpulse_collector_rows_total", collector="gpu") > 0
        assert sidecar.stop()
    assert nvml.shutdowns == 1


def test_without_a_driver_gpu_auto_says_so_once_and_the_sidecar_carries_on(
    store_dsn: str, database: str, tmp_path: Path, ch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    apply(ch, SchemaOptions(database=database))
    caplog.set_level(logging.WARNING)
    with running_sidecar(store_dsn, database, tmp_path, gpu="auto", gpu_interval="50ms") as sidecar:  # real pynvml
        assert sidecar.get("/readyz").status == 200
        assert "gpu" not in sidecar.sidecar.ticks.ticks
    messages = [r.getMessage() for r in caplog.records if "GPU" in r.getMessage()]
    assert len(messages) == 1, messages


def test_scheduled_analysis_writes_result_rows(store_dsn: str, database: str, tmp_path: Path, ch: Any) -> None:
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path, analyze_every="100ms", analyze_window="1h") as sidecar:
        assert wait_for(lambda: sidecar.sidecar.ticks.ticks.get("analyzers", 0) >= 1, timeout=300)
        assert sidecar.metric("llmpulse_collector_errors_total", collector="analyzers") == 0
    rows = ch.query(f"SELECT DISTINCT Analyzer FROM {database}.analysis_results").result_rows
    assert rows, "the scheduled run wrote no analysis_results rows"
