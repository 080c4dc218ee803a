"""``llmpulse dashboards export``: Grafana provisioning files that load into Grafana's models."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard as GrafanaDashboard
from llmpulse.agent.cli import main
from llmpulse.dashboards.alerts import RULE_KEYS
from llmpulse.dashboards.panels import DASHBOARDS

from .grafana_schema import schema_errors

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "grafana" / "provisioning"
DEPLOY_URL = "http://llmpulse:llmpulse@clickhouse:8123/llmpulse"  # the docker-compose ClickHouse


def _export(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "provisioning"
    assert main(["dashboards", "export", "--out", str(out), *extra]) == 0
    return out


def test_export_writes_a_provisioning_tree(tmp_path, capsys):
    out = _export(tmp_path, "--clickhouse-url", "https://reader:pw@ch.example:8443/prod")
    assert "wrote 9 files" in capsys.readouterr().out
    (datasource,) = yaml.safe_load((out / "datasources" / "clickhouse.yaml").read_text())["datasources"]
    assert datasource["type"] == "grafana-clickhouse-datasource" and datasource["uid"] == "llmpulse-clickhouse"
    assert datasource["jsonData"] | {"traces": None} == {
        "host": "ch.example",
        "port": 8443,
        "protocol": "http",
        "secure": True,
        "username": "reader",
        "defaultDatabase": "prod",
        "traces": None,
    }
    assert datasource["secureJsonData"] == {"password": "pw"}
    (provider,) = yaml.safe_load((out / "dashboards" / "llmpulse.yaml").read_text())["providers"]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/llmpulse"
    for dashboard in DASHBOARDS:
        body = json.loads((out / "dashboards" / "llmpulse" / f"{dashboard.uid}.json").read_text())
        assert schema_errors(GrafanaDashboard, body) == []
    (group,) = yaml.safe_load((out / "alerting" / "llmpulse-alerts.yaml").read_text())["groups"]
    assert [r["uid"] for r in group["rules"]] == [f"llmpulse-{k.replace('_', '-')}" for k in RULE_KEYS]
    assert {r["data"][0]["datasourceUid"] for r in group["rules"]} == {"llmpulse-clickhouse"}


def test_password_comes_from_the_environment_when_not_given(tmp_path):
    out = _export(tmp_path, "--clickhouse-url", "http://grafana@ch:8123/llmpulse")
    text = (out / "datasources" / "clickhouse.yaml").read_text()
    assert "password: ${LLMPULSE_CLICKHOUSE_PASSWORD}" in text


def test_alert_settings_file_changes_the_rules(tmp_path):
    settings = tmp_path / "alerts.yaml"
    settings.write_text("error_rate: 0.25\ndisabled: [gpu_memory]\n")
    out = _export(tmp_path, "--alerts", str(settings))
    (group,) = yaml.safe_load((out / "alerting" / "llmpulse-alerts.yaml").read_text())["groups"]
    rules = {r["uid"]: r for r in group["rules"]}
    assert "llmpulse-gpu-memory" not in rules
    assert rules["llmpulse-error-rate"]["data"][2]["model"]["conditions"][0]["evaluator"]["params"] == [0.25]


def test_export_errors_are_clear(tmp_path, capsys):
    assert main(["dashboards", "export", "--out", str(tmp_path), "--clickhouse-url", "chdb:///x/store"]) == 2
    assert "Grafana cannot read the embedded store" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["dashboards", "export", "--out", str(blocker)]) == 2
    assert "llmpulse: error: cannot write" in capsys.readouterr().err
    bad = tmp_path / "alerts.yaml"
    bad.write_text("eror_rate: 1\n")
    assert main(["dashboards", "export", "--out", str(tmp_path / "o"), "--alerts", str(bad)]) == 2
    assert "unknown alert setting(s) ['eror_rate']" in capsys.readouterr().err


def test_deploy_provisioning_is_the_current_export(tmp_path):
    """deploy/grafana/provisioning (mounted by docker-compose) must be regenerated when panels change:
    llmpulse dashboards export --out deploy/grafana/provisioning --clickhouse-url DEPLOY_URL"""
    out = _export(tmp_path, "--clickhouse-url", DEPLOY_URL)
    fresh = {p.relative_to(out): p.read_text() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(DEPLOY): p.read_text() for p in DEPLOY.rglob("*") if p.is_file()}
    assert sorted(committed) == sorted(fresh)
    stale = [str(name) for name, text in fresh.items() if committed[name] != text]
    assert not stale, f"regenerate deploy/grafana/provisioning: {stale}"
