"""Report windows out of range are a clear ValueError, never an overflow (issue 10, defect 9 part).

``/dashboard?window=99999999999999d`` answered 500: the window became a ``timedelta`` too large for
Python (OverflowError). The sidecar maps ValueError to 400; ``llmpulse report --window`` prints it.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from llmpulse.dashboards.report import MAX_WINDOW, parse_window

from tests.conftest import PYTHON


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("99999999999999d", "too long: at most 3650d"),
        ("3651d", "too long"),
        ("9" * 400 + "s", "too long"),
        ("1" + "0" * 5000 + "d", "too long"),
        (timedelta(days=4000), "too long"),
        ("0d", "bad duration"),
        ("-1d", "bad duration"),
        ("1.5s", "bad duration"),  # Grafana's time ranges are whole seconds
        ("", "bad duration"),
        (timedelta(0), "must be positive"),
    ],
)
def test_out_of_range_windows_are_value_errors(window, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_window(window)
    assert len(str(info.value)) < 200  # a 5,000-digit window is not echoed back whole


def test_windows_in_range_parse():
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window(" 24h ") == timedelta(hours=24)
    assert parse_window("3650d") == MAX_WINDOW
    assert parse_window("1w") == timedelta(days=7)  # the one duration grammar of every command
    assert parse_window("1.5h") == timedelta(minutes=90)
    assert parse_window(timedelta(hours=2)) == timedelta(hours=2)


def test_report_cli_refuses_an_overflowing_window(tmp_path: Path, python_env):
    result = subprocess.run(
        [PYTHON, "-m", "llmpulse.agent.cli", "report", "--window", "99999999999999d", "--dsn", "chdb://memory"],
        capture_output=True,
        text=True,
        env=python_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert "the report window '99999999999999d' is too long: at most 3650d" in result.stderr
    assert "Traceback" not in result.stderr
