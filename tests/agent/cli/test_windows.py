"""``analyze`` and ``report`` take the one duration grammar; so do the sidecar's settings (issue 12)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from llmpulse.agent.cli import main
from llmpulse.agent.sidecar.config import build_sidecar_config


def test_report_takes_a_window_in_weeks(tmp_path: Path, store_dsn: str, database: str) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--dsn", store_dsn, "--database", database, "--out", str(out), "--window", "1w"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_analyze_takes_windows_in_weeks_and_fractions(store_dsn: str, database: str, capsys) -> None:
    argv = ["analyze", "operational", "--dsn", store_dsn, "--database", database, "--no-write"]
    assert main([*argv, "--window", "1.5h", "--reference", "2w"]) == 0
    first = capsys.readouterr().out.splitlines()[0]  # window A..B UTC  reference C..D UTC
    spans = [
        datetime.fromisoformat(end) - datetime.fromisoformat(start)
        for start, end in re.findall(r"(\S+ \S+)\.\.(\S+ \S+) UTC", first)
    ]
    assert spans == [timedelta(minutes=90), timedelta(weeks=2)]


def test_the_sidecar_settings_take_the_same_grammar() -> None:
    config = build_sidecar_config(
        {"analyze_every": "1.5h", "analyze_window": "1w", "analyze_reference": "2w", "gpu_interval": "500ms"},
        environ={},
    )
    assert config.analyze_every == 5400.0 and config.gpu_interval == 0.5
    assert (config.analyze_window, config.analyze_reference) == ("7d", "14d")  # the form the analyzers read
