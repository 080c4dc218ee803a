"""Runs a real Sidecar (aiohttp on a free port, chDB store) on a background event loop for tests."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from llmpulse.agent.sidecar.config import build_sidecar_config
from llmpulse.agent.sidecar.server import Sidecar


class RunningSidecar:
    def __init__(self, sidecar: Sidecar, loop: asyncio.AbstractEventLoop) -> None:
        self.sidecar = sidecar
        self.loop = loop
        self.url = f"http://127.0.0.1:{sidecar.port}"
        self.http = urllib3.PoolManager(retries=False)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return self.http.request("POST", self.url + path, body=body, headers=headers or {})

    def get(self, path: str) -> Any:
        return self.http.request("GET", self.url + path)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.sidecar.pipeline.flush(timeout)

    def metric(self, name: str, **labels: str) -> float:
        """A value from the sidecar's own /metrics, parsed with prometheus-client."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.get("/metrics").data.decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        raise KeyError(name)

    def stop(self) -> bool:
        return asyncio.run_coroutine_threadsafe(self.sidecar.stop(), self.loop).result(60)


@contextmanager
def running_sidecar(store_dsn: str, database: str, tmp_path: Path, **settings: Any) -> Iterator[RunningSidecar]:
    flags = {
        "dsn": store_dsn,
        "database": database,
        "host": "127.0.0.1",
        "port": 0,
        "gpu": "off",
        "spool_dir": str(tmp_path / "spool"),
        "flush_interval": 0.05,
        **settings,
    }
    nvml = flags.pop("nvml", None)
    fetch = flags.pop("fetch", None)
    events_wait = flags.pop("events_wait", None)  # seconds; a config field, not a flag
    config = build_sidecar_config(flags, environ={})
    if events_wait is not None:
        config = dataclasses.replace(config, events_wait=events_wait)
    sidecar = Sidecar(config, nvml=nvml, fetch=fetch)
    sidecar.open_store()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(sidecar.start(), loop).result(30)
    running = RunningSidecar(sidecar, loop)
    try:
        yield running
    finally:
        if not sidecar._stopped.is_set():
            running.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll until ``predicate()`` is true; tests assert on the result, never on elapsed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
