"""Importing the dashboards package (as the CLI does to register verbs) loads no heavy or optional library."""

from __future__ import annotations

import subprocess
import sys

MODULES = (
    "cli",
    "contract",
    "model",
    "panels",
    "macros",
    "grafana",
    "alerts",
    "provisioning",
    "push",
    "report",
    "store",
    "svg",
)
HEAVY = ("numpy", "pandas", "torch", "grafana_client", "niquests", "yaml", "clickhouse_connect", "chdb")


def test_dashboards_modules_import_without_heavy_dependencies():
    code = (
        "import sys\n"
        + "".join(f"import llmpulse.dashboards.{m}\n" for m in MODULES)
        + f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
