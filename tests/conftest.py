"""Shared fixtures.

chDB allows one engine path per process for the process's whole life, so the test session opens one
store and every test gets its own database in it. Tests that need a second process (SIGKILL, CLI) use
subprocesses with their own store paths.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "store"


@pytest.fixture(scope="session")
def store_dsn(store_path: Path) -> str:
    return f"chdb://{store_path}"


@pytest.fixture(scope="session")
def ch(store_dsn: str) -> Iterator[Any]:
    """A clickhouse-connect client on the session's embedded store."""
    from llmpulse.agent.store.dsn import parse_dsn

    client = parse_dsn(store_dsn).client()
    yield client
    client.close()


@pytest.fixture
def database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


class SpanCollector:
    """Receives finished spans from the pipeline (the ``span_exporters`` seam)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def __call__(self, spans: Any) -> None:
        self.spans.extend(spans)

    def by_name(self, name: str) -> list[Any]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> Any:
        found = self.by_name(name)
        assert len(found) == 1, f"expected one span named {name!r}, got {[s.name for s in self.spans]}"
        return found[0]


@pytest.fixture
def collector() -> SpanCollector:
    return SpanCollector()


@pytest.fixture
def configured(store_dsn: str, database: str, tmp_path: Path, collector: SpanCollector) -> Iterator[dict[str, Any]]:
    """The SDK configured on the session store, a fresh database, and a span collector."""
    from llmpulse import agent

    agent.configure(
        store_dsn,
        database=database,
        service_name="test-svc",
        spool_dir=str(tmp_path / "spool"),
        flush_interval=0.05,
        span_exporters=[collector],
    )
    yield {"database": database, "collector": collector, "spool_dir": tmp_path / "spool"}
    agent.shutdown(10)


@pytest.fixture
def python_env() -> dict[str, str]:
    """Environment for subprocesses: the same interpreter and package, no inherited LLMPULSE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMPULSE_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable
