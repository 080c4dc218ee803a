"""Render the panel definitions to Grafana dashboard JSON for the ``grafana-clickhouse-datasource`` plugin.

Targets have the shape of the plugin's own shipped dashboards (``src/dashboards/otel-service-dashboard.json``:
``editorType: sql``, ``rawSql``, ``format`` 0/1/3, the data source as ``${datasource}``), and every dashboard
has a ``datasource`` variable so the same JSON works with any ClickHouse data source.
"""

from __future__ import annotations

from typing import Any

from .model import Dashboard, Panel, Row, Variable

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"
DEFAULT_DATASOURCE_UID = "llmpulse-clickhouse"
SCHEMA_VERSION = 39  # Grafana 11 dashboards (the grafana-foundation-sdk default)
GRID_WIDTH = 24

_QUERY_TYPES = {"timeseries": "timeseries", "traces": "traces"}


def _datasource() -> dict[str, str]:
    return {"type": PLUGIN_ID, "uid": "${datasource}"}


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps = [{"color": t.color, "value": t.value} for t in panel.thresholds] or [{"color": "green", "value": None}]
    return {"mode": "absolute", "steps": steps}


def _custom(panel: Panel) -> dict[str, Any]:
    if panel.visualization == "timeseries":
        return {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 25 if panel.stacked else 8,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if len(panel.thresholds) > 1 else "off"},
        }
    if panel.visualization == "table":
        return {"align": "auto", "inspect": False, "cellOptions": {"type": "auto"}}
    return {}


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": _thresholds(panel),
        "color": {"mode": "thresholds" if panel.visualization == "stat" else "palette-classic"},
        "custom": _custom(panel),
    }
    for name in ("decimals", "min", "max"):
        value = getattr(panel, name)
        if value is not None:
            defaults[name] = value
    overrides: list[dict[str, Any]] = [
        {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": unit}]}
        for column, unit in panel.column_units
    ]
    overrides.extend(
        {
            "matcher": {"id": "byName", "options": link.column},
            "properties": [{"id": "links", "value": [{"title": link.title, "url": link.url}]}],
        }
        for link in panel.links
    )
    return {"defaults": defaults, "overrides": overrides}


_LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
_TOOLTIP = {"mode": "multi", "sort": "desc"}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.visualization == "timeseries":
        return {"legend": dict(_LEGEND), "tooltip": dict(_TOOLTIP)}
    if panel.visualization == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        }
    if panel.visualization == "barchart":
        return {
            "xField": panel.columns[0],
            "orientation": "auto",
            "showValue": "auto",
            "stacking": "none",
            "groupWidth": 0.7,
            "barWidth": 0.9,
            "xTickLabelRotation": 0,
            "legend": dict(_LEGEND),
            "tooltip": {"mode": "single", "sort": "none"},
        }
    if panel.visualization == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    return {}


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    """One panel with one SQL target."""
    return {
        "id": panel_id,
        "type": panel.visualization,
        "title": panel.title,
        "description": panel.description,
        "datasource": _datasource(),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [
            {
                "refId": "A",
                "datasource": _datasource(),
                "pluginVersion": PLUGIN_VERSION,
                "editorType": "sql",
                "queryType": _QUERY_TYPES.get(panel.visualization, "table"),
                "format": panel.format,
                "rawSql": panel.sql,
            }
        ],
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
    }


def _layout(dashboard: Dashboard) -> list[dict[str, Any]]:
    """Rows span the width; panels flow left to right and wrap, each line as tall as its tallest panel."""
    out: list[dict[str, Any]] = []
    x = y = line_height = 0
    for panel_id, item in enumerate(dashboard.items, start=1):
        if isinstance(item, Row):
            if x:
                y, x, line_height = y + line_height, 0, 0
            out.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            continue
        if x + item.width > GRID_WIDTH:
            y, x, line_height = y + line_height, 0, 0
        out.append(render_panel(item, panel_id, x, y))
        x += item.width
        line_height = max(line_height, item.height)
    return out


def render_variable(variable: Variable) -> dict[str, Any]:
    if variable.kind == "textbox":
        return {
            "type": "textbox",
            "name": variable.name,
            "label": variable.label,
            "description": variable.description,
            "query": variable.default,
            "current": {"text": variable.default, "value": variable.default},
            "hide": 0,
        }
    return {
        "type": "query",
        "name": variable.name,
        "label": variable.label,
        "description": variable.description,
        "datasource": _datasource(),
        "query": {"editorType": "sql", "rawSql": variable.sql, "format": 1},
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "current": {"text": ["All"], "value": ["$__all"]},
        "hide": 0,
    }


def _datasource_variable(default_uid: str) -> dict[str, Any]:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "ClickHouse",
        "query": PLUGIN_ID,
        "current": {"text": default_uid, "value": default_uid},
        "refresh": 1,
        "hide": 0,
    }


def render_dashboard(dashboard: Dashboard, *, datasource_uid: str = DEFAULT_DATASOURCE_UID) -> dict[str, Any]:
    """The dashboard JSON (the ``dashboard`` object of ``POST /api/dashboards/db`` or a provisioned file)."""
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": dashboard.time_from, "to": "now"},
        "refresh": dashboard.refresh,
        "templating": {
            "list": [_datasource_variable(datasource_uid), *(render_variable(v) for v in dashboard.variables)]
        },
        "annotations": {"list": []},
        "links": [
            {
                "title": "llmpulse",
                "type": "dashboards",
                "tags": ["llmpulse"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": _layout(dashboard),
    }
