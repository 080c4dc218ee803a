"""Dashboard JSON against Grafana's schema models (grafana-foundation-sdk) and the plugin's query shape."""

from __future__ import annotations

import copy
import re

import pytest
from grafana_foundation_sdk.models.dashboard import Dashboard as GrafanaDashboard
from llmpulse.dashboards.grafana import PLUGIN_ID, render_dashboard
from llmpulse.dashboards.panels import DASHBOARDS, GPU, LLM_OVERVIEW, QUALITY

from .grafana_schema import schema_errors

RENDERED = [(d, render_dashboard(d)) for d in DASHBOARDS]
IDS = [d.uid for d in DASHBOARDS]


@pytest.mark.parametrize(("dashboard", "body"), RENDERED, ids=IDS)
def test_dashboard_conforms_to_grafana_schema(dashboard, body):
    assert schema_errors(GrafanaDashboard, body) == []


def test_schema_check_catches_unknown_fields_and_bad_enums():
    body = copy.deepcopy(RENDERED[0][1])
    body["panels"][1]["gridpos"] = body["panels"][1].pop("gridPos")
    body["panels"][1]["options"]["graphMode"] = "wiggle"
    body["templating"]["list"][1]["type"] = "dropdown"
    errors = "\n".join(schema_errors(GrafanaDashboard, body))
    assert "panels[1].gridpos: not in the schema" in errors
    assert "'wiggle' is not BigValueGraphMode" in errors
    assert "'dropdown' is not VariableType" in errors


@pytest.mark.parametrize(("dashboard", "body"), RENDERED, ids=IDS)
def test_targets_have_the_plugin_query_shape(dashboard, body):
    panels = [p for p in body["panels"] if p["type"] != "row"]
    assert len(panels) == len(dashboard.panels)
    for rendered, panel in zip(panels, dashboard.panels, strict=True):
        (target,) = rendered["targets"]
        assert target["datasource"] == {"type": PLUGIN_ID, "uid": "${datasource}"}
        assert target["editorType"] == "sql" and target["rawSql"] == panel.sql
        assert target["format"] == {"timeseries": 0, "traces": 3}.get(panel.visualization, 1)
        if panel.visualization == "traces":
            assert target["queryType"] == "traces"


@pytest.mark.parametrize(("dashboard", "body"), RENDERED, ids=IDS)
def test_layout_has_unique_ids_and_no_overlap(dashboard, body):
    ids = [p["id"] for p in body["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in body["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24
        covered = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & covered, f"panel {panel['title']} overlaps another"
        cells |= covered


@pytest.mark.parametrize(("dashboard", "body"), RENDERED, ids=IDS)
def test_every_variable_used_is_defined(dashboard, body):
    defined = {v["name"] for v in body["templating"]["list"]} | {"__from", "__to", "__value", "__url_time_range"}
    text = " ".join(p.sql for p in dashboard.panels) + " ".join(v.sql for v in dashboard.variables)
    used = {m for m in re.findall(r"\$\{?(\w+)", text) if not m.startswith("__")}
    assert used <= defined, f"undefined variables {used - defined}"
    assert body["templating"]["list"][0]["type"] == "datasource"


def test_call_dashboards_filter_by_service_model_and_prompt_version():
    for dashboard in (LLM_OVERVIEW, QUALITY):
        names = [v.name for v in dashboard.variables]
        assert names[:3] == ["service", "model", "prompt_version"]
    assert {"service", "model", "host"} <= {v.name for v in GPU.variables}
