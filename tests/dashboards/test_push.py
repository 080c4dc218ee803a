"""``llmpulse dashboards push`` against recorded Grafana API answers (no live Grafana runs in CI)."""

from __future__ import annotations

import socket

import pytest
from llmpulse.agent.cli import main
from llmpulse.dashboards.alerts import RULE_KEYS, AlertSettings
from llmpulse.dashboards.panels import DASHBOARDS
from llmpulse.dashboards.provisioning import DatasourceSettings
from llmpulse.dashboards.push import PushError, check_url, push

from .grafana_server import GrafanaServer, GrafanaState

CLICKHOUSE = "http://grafana_reader:secret@clickhouse:8123/llmpulse"


def test_push_creates_everything_then_updates_without_duplicates():
    with GrafanaServer() as grafana:
        datasource = DatasourceSettings.from_url(CLICKHOUSE)
        first = push(grafana.url, grafana.state.token, datasource=datasource)
        state = grafana.state
        assert first.grafana_version == "11.3.0"
        assert first.folder == "llmpulse: created" and first.datasource == "llmpulse-clickhouse: created"
        assert set(first.dashboards.values()) == {"created"} and len(first.dashboards) == len(DASHBOARDS)
        assert set(first.alert_rules.values()) == {"created"} and len(first.alert_rules) == len(RULE_KEYS)

        second = push(grafana.url, state.token, datasource=datasource)
        assert second.folder == "llmpulse: exists" and second.datasource == "llmpulse-clickhouse: updated"
        assert set(second.dashboards.values()) == {"updated (version 2)"}
        assert set(second.alert_rules.values()) == {"updated"}
        assert len(state.folders) == 1 and len(state.datasources) == 1
        assert len(state.dashboards) == len(DASHBOARDS) and len(state.rules) == len(RULE_KEYS)

    posts = [r for r in state.requests if r.method == "POST"]
    assert sum(r.path == "/api/folders" for r in posts) == 1
    assert sum(r.path == "/api/datasources" for r in posts) == 1
    assert sum(r.path == "/api/v1/provisioning/alert-rules" for r in posts) == len(RULE_KEYS)
    dashboard_posts = [r.body for r in posts if r.path == "/api/dashboards/db"]
    assert all(b["overwrite"] is True and b["folderUid"] == "llmpulse" for b in dashboard_posts)
    assert all(b["dashboard"]["id"] is None for b in dashboard_posts)
    rule_writes = [r for r in state.requests if "/alert-rules" in r.path and r.method in ("POST", "PUT")]
    assert all(r.headers.get("X-Disable-Provenance") == "true" for r in rule_writes)
    created = next(r.body for r in posts if r.path == "/api/datasources")
    assert created["type"] == "grafana-clickhouse-datasource"
    assert created["jsonData"]["host"] == "clickhouse" and created["jsonData"]["defaultDatabase"] == "llmpulse"
    assert created["secureJsonData"] == {"password": "secret"}


def test_rules_point_at_the_pushed_datasource_and_folder():
    with GrafanaServer() as grafana:
        settings = AlertSettings(folder_uid="obs", folder="Observability", datasource_uid="ch-prod")
        push(grafana.url, grafana.state.token, alert_settings=settings)
        rule = grafana.state.rules["llmpulse-error-rate"]
        assert rule["folderUID"] == "obs" and rule["data"][0]["datasourceUid"] == "ch-prod"
        assert grafana.state.folders["obs"]["title"] == "Observability"
        dashboard = grafana.state.dashboards["llmpulse-llm-overview"]
        assert dashboard["folderUid"] == "obs"
        assert dashboard["body"]["templating"]["list"][0]["current"]["value"] == "ch-prod"


def test_bad_token_is_a_clear_error():
    with GrafanaServer() as grafana, pytest.raises(PushError) as info:
        push(grafana.url, "wrong-token")
    assert "refused the token (401 Unauthorized)" in str(info.value) and "--token" in str(info.value)


def test_forbidden_is_a_clear_error():
    state = GrafanaState(forbid={("POST", "/api/datasources")})
    with GrafanaServer(state) as grafana, pytest.raises(PushError) as info:
        push(grafana.url, state.token, datasource=DatasourceSettings())
    message = str(info.value)
    assert "403 Forbidden" in message and "creating the data source" in message
    assert "Permissions needed: datasources:create" in message


def test_refused_connection_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PushError) as info:
        push(f"http://127.0.0.1:{port}", "token", timeout=5)
    assert f"cannot reach Grafana while checking /api/health at http://127.0.0.1:{port}" in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:3000", "bad Grafana URL 'localhost:3000'"),
        ("ftp://grafana", "bad Grafana URL 'ftp://grafana'"),
        ("http://grafana:port", "the port must be a number"),
    ],
)
def test_bad_url_is_refused_before_any_call(url, message):
    with pytest.raises(ValueError, match=message):
        check_url(url)


def test_sub_path_urls_keep_their_prefix():
    assert check_url("http://host/grafana/") == "http://host/grafana/"
    assert check_url("https://host:3000") == "https://host:3000"


def test_cli_push_and_its_errors(capsys):
    with GrafanaServer() as grafana:
        code = main(
            ["dashboards", "push", "--url", grafana.url, "--token", grafana.state.token, "--clickhouse-url", CLICKHOUSE]
        )
        out = capsys.readouterr().out
        assert code == 0 and "data source: llmpulse-clickhouse: created" in out
        assert main(["dashboards", "push", "--url", grafana.url, "--token", "nope"]) == 1
        assert "llmpulse: error: Grafana refused the token (401 Unauthorized)" in capsys.readouterr().err
    assert main(["dashboards", "push", "--url", "grafana:3000", "--token", "x"]) == 2
    assert "llmpulse: error: bad Grafana URL" in capsys.readouterr().err
    assert main(["dashboards", "push", "--url", "http://x", "--clickhouse-url", "chdb:///tmp/store"]) == 2
    assert "Grafana cannot read the embedded store" in capsys.readouterr().err
