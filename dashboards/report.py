"""The built-in dashboard: the same panels, run on the store, as one self-contained HTML page.

No server and no network at view time: charts are inline SVG drawn in Python, styles are inline, there
is no script. ``render_report(client, database)`` is what ``llmpulse report``, ``llmpulse demo`` and the
sidecar's ``/dashboard`` call. A panel whose query fails shows the error in its place; the page is
always written.

Each dashboard is drawn over the span of its data inside the window (``Dashboard.data_times``: from the
first to the last record, to the second), not over the whole window: a one-minute run fills its charts'
axes and "requests per second" counts per second of that minute. A dashboard without data in the window
is drawn over the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any

from . import svg
from .alerts import duration_seconds
from .macros import TimeRange, nice_interval
from .model import Dashboard, Panel, Row
from .panels import DASHBOARDS, QUALITY, TRACES
from .store import QueryResult, default_variables, qualify, run_sql

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=3650)
"""The longest report window: ten years reaches back well past any TTL and stays inside ``DateTime``."""
ROW_PIXELS = 30  # a Grafana grid unit is about 30 px high
POINTS = 120  # about this many buckets across a chart, as TimeRange.last gives


def parse_window(window: timedelta | str) -> timedelta:
    """A report window from ``30m``/``24h``/``7d`` or a timedelta; ValueError (a 400 in the sidecar) when out of range."""
    if not isinstance(window, timedelta):
        text = str(window).strip()
        seconds = duration_seconds(text)  # a Python int: compared before timedelta() could overflow
        if seconds > MAX_WINDOW.total_seconds():
            raise ValueError(f"the report window {text[:40]!r} is too long: at most {MAX_WINDOW.days}d")
        window = timedelta(seconds=seconds)
    if window <= timedelta(0):
        raise ValueError(f"the report window must be positive, got {window}")
    if window > MAX_WINDOW:
        raise ValueError(f"the report window {window} is too long: at most {MAX_WINDOW.days}d")
    return window


def _epoch(value: Any) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def time_series(panel: Panel, result: QueryResult) -> list[svg.Series]:
    """Long-format rows (time, label columns, value columns) as one series per label set and value column."""
    time_index = result.columns.index("time")
    numeric = [
        i
        for i, name in enumerate(result.columns)
        if i != time_index and any(_number(row[i]) is not None for row in result.rows)
    ]
    labels = [i for i, name in enumerate(result.columns) if i != time_index and i not in numeric]
    series: dict[str, list[tuple[float, float]]] = {}
    for row in result.rows:
        label = " ".join(str(row[i]) for i in labels)
        for i in numeric:
            value = _number(row[i])
            if value is None:
                continue
            name = (f"{result.columns[i]} {label}" if len(numeric) > 1 else label or result.columns[i]).strip()
            series.setdefault(name, []).append((_epoch(row[time_index]), value))
    return [svg.Series(name, sorted(points)) for name, points in series.items()]


def _thresholds(panel: Panel) -> list[tuple[float, str]]:
    return [(t.value, t.color) for t in panel.thresholds if t.value is not None]


def _stat(panel: Panel, result: QueryResult) -> str:
    value = result.rows[0][0] if result.rows else None
    shade = panel.thresholds[0].color if panel.thresholds else "blue"
    number = _number(value)
    for step in panel.thresholds[1:]:
        if number is not None and step.value is not None and number >= step.value:
            shade = step.color
    if number is None:  # NULL or NaN: an aggregate over no rows
        return '<div class="statvalue nodata">No data</div>'
    text = svg.format_value(value, panel.unit, panel.decimals)
    return f'<div class="statvalue" style="color:{svg.color(shade)}">{escape(text)}</div>'


def _column_unit(panel: Panel, column: str) -> str:
    return dict(panel.column_units).get(column, "none")


def _table(panel: Panel, result: QueryResult, limit: int = 25) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in result.columns)
    maxima = {
        i: max((abs(n) for n in (_number(r[i]) for r in result.rows) if n is not None), default=0.0)
        for i in range(len(result.columns))
    }
    body = []
    for row in result.rows[:limit]:
        cells = []
        for i, value in enumerate(row):
            text = escape(svg.format_value(value, _column_unit(panel, result.columns[i])))
            number = _number(value)
            if number is not None and maxima[i] > 0 and len(result.rows) > 1:
                share = abs(number) / maxima[i] * 100
                cells.append(f'<td class="num"><span class="cellbar" style="width:{share:.0f}%"></span>{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f'<p class="muted">{len(result.rows) - limit} more rows</p>' if len(result.rows) > limit else ""
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def _bars(panel: Panel, result: QueryResult) -> str:
    labels = [str(v) for v in result.column(panel.columns[0])]
    values = [_number(v) for v in result.column(panel.columns[1])]
    return svg.bar_chart(labels, values, unit=panel.unit)


def _trace(result: QueryResult) -> str:
    spans = [
        svg.Span(
            span_id=str(row["spanID"]),
            parent_id=str(row["parentSpanID"]),
            name=str(row["operationName"]),
            service=str(row["serviceName"]),
            start_ms=float(row["startTime"]),
            duration_ms=float(row["duration"]),
            error=row["statusCode"] == 2,
        )
        for row in (dict(zip(result.columns, r, strict=True)) for r in result.rows)
    ]
    title = f'<p class="muted">trace {escape(str(result.rows[0][0]))}, {len(spans)} spans</p>' if spans else ""
    return title + svg.waterfall(spans)


def render_panel(panel: Panel, result: QueryResult, time_range: TimeRange) -> str:
    """One panel's body: chart, stat or table, or why there is none."""
    if result.error:
        return f'<div class="error">query failed: {escape(result.error)}</div>'
    if not result.rows:
        return '<div class="empty">No data in this window</div>'
    if panel.visualization == "stat":
        return _stat(panel, result)
    if panel.visualization == "table":
        return _table(panel, result)
    if panel.visualization == "barchart":
        return _bars(panel, result) or '<div class="empty">No values</div>'
    if panel.visualization == "traces":
        return _trace(result)
    series = time_series(panel, result)
    chart = svg.line_chart(
        series,
        unit=panel.unit,
        thresholds=_thresholds(panel),
        stacked=panel.stacked,
        y_min=panel.min,
        y_max=panel.max,
        height=max(panel.height * ROW_PIXELS - 90, 140),
        start=time_range.start.timestamp(),
        end=time_range.end.timestamp(),
    )
    return (chart + svg.legend([s.name for s in series])) if chart else '<div class="empty">No values</div>'


def data_span(client: Any, database: str, dashboard: Dashboard, window: TimeRange) -> TimeRange | None:
    """The span of ``dashboard``'s data inside ``window`` (whole seconds), or None when it has none there."""
    found: list[tuple[datetime, datetime]] = []
    for source in dashboard.data_times:
        table, column = source.split(".")
        sql = qualify(
            f"SELECT count(), toUnixTimestamp64Milli(toDateTime64(min({column}), 3)),"
            f" toUnixTimestamp64Milli(toDateTime64(max({column}), 3)) FROM {table}"
            f" WHERE {column} >= fromUnixTimestamp64Milli({{start:Int64}})"
            f" AND {column} < fromUnixTimestamp64Milli({{end:Int64}})",
            database,
        )
        try:
            count, first, last = client.query(
                sql, parameters={"start": window.from_ms, "end": window.to_ms}
            ).result_rows[0]
        except Exception:
            continue  # a missing table is drawn over the window; its panels show the error
        if count:
            found.append((_from_ms(first // 1000 * 1000), _from_ms(last // 1000 * 1000 + 1000)))
    if not found:
        return None
    start = max(min(f for f, _ in found), window.start)
    end = min(max(t for _, t in found), window.end)
    if end <= start:
        end = start + timedelta(seconds=1)
    return TimeRange(start, end, nice_interval((end - start) / POINTS))


def _from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)


def _dashboard_variables(client: Any, database: str, dashboard: Dashboard, time_range: TimeRange) -> dict:
    """Grafana defaults ("All"); the Traces dashboard shows the slowest trace of the window."""
    values = default_variables(dashboard)
    if dashboard is TRACES:
        slowest = next(p for p in TRACES.panels if p.key == "slowest_traces")
        found = run_sql(client, database, slowest.sql, time_range, values)
        values["trace_id"] = str(found.rows[0][0]) if found.rows else ""
    return values


def _section(client: Any, database: str, dashboard: Dashboard, window: TimeRange) -> tuple[str, dict]:
    span = data_span(client, database, dashboard, window)
    time_range = span or window
    values = _dashboard_variables(client, database, dashboard, time_range)
    cells: list[str] = []
    results: dict[str, QueryResult] = {}
    for item in dashboard.items:
        if isinstance(item, Row):
            cells.append(f'<h3 class="row">{escape(item.title)}</h3>')
            continue
        result = run_sql(client, database, item.sql, time_range, values)
        results[item.key] = result
        cells.append(
            f'<figure class="panel {item.visualization}" id="{escape(dashboard.uid)}-{escape(item.key)}" '
            f'data-rows="{len(result.rows)}" style="grid-column: span {item.width}">'
            f'<figcaption title="{escape(item.description)}">{escape(item.title)}</figcaption>'
            f"{render_panel(item, result, time_range)}</figure>"
        )
    drawn = f"Drawn over {_range_text(time_range)}" if span else "No data in the window: drawn over the window"
    body = (
        f'<section id="{escape(dashboard.uid)}"><h2>{escape(dashboard.title.split(" / ")[-1])}</h2>'
        f'<p class="muted">{escape(dashboard.description)}</p>'
        f'<p class="muted span" data-from="{time_range.from_ms}" data-to="{time_range.to_ms}">'
        f"{escape(drawn)}</p>"
        f'<div class="grid">{"".join(cells)}</div></section>'
    )
    return body, results


def _range_text(time_range: TimeRange) -> str:
    """``the data: 12:00:05 to 12:01:06 UTC (61 s), 1 s buckets``."""
    seconds = (time_range.end - time_range.start).total_seconds()
    day = "" if time_range.start.date() == time_range.end.date() else "%Y-%m-%d "
    return (
        f"the data: {time_range.start:%Y-%m-%d %H:%M:%S} to {time_range.end.strftime(day + '%H:%M:%S')} UTC "
        f"({svg.format_value(seconds, 's')}), {svg.format_value(time_range.interval.total_seconds(), 's')} buckets"
    )


def _alert_list(result: QueryResult | None) -> str:
    if result is None or result.error:
        reason = result.error if result else "not queried"
        return f'<div class="error">alerts could not be read: {escape(reason or "")}</div>'
    if not result.rows:
        return '<p class="ok">No analyzer alerts in this window.</p>'
    items = []
    for row in result.rows[:20]:
        record = dict(zip(result.columns, row, strict=True))
        severity = str(record.get("severity", "warning"))
        items.append(
            f'<li class="alert {escape(severity)}"><b>{escape(str(record.get("title", "")))}</b>'
            f'<span class="muted"> {escape(svg.format_value(record.get("time")))} UTC · {escape(severity)}</span>'
            f"<br>{escape(str(record.get('message', '')))}</li>"
        )
    return f'<ul class="alerts">{"".join(items)}</ul>'


STYLE = """
body{margin:0;font:14px system-ui,sans-serif;background:#f4f5f5;color:#24292e}
header{background:#181b1f;color:#eee;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#aab}nav{padding:8px 24px;background:#fff;border-bottom:1px solid #ddd}
nav a{margin-right:16px;color:#3274d9;text-decoration:none}main{padding:8px 24px 40px}
section{margin-top:18px}h2{margin:12px 0 2px;font-size:18px}h3.row{grid-column:1/-1;margin:10px 0 0;
font-size:14px;color:#555;border-bottom:1px solid #ddd;padding-bottom:2px}
.grid{display:grid;grid-template-columns:repeat(24,minmax(0,1fr));gap:10px}
figure.panel{margin:0;background:#fff;border:1px solid #dde0e4;border-radius:4px;padding:8px 10px;min-width:0}
figcaption{font-weight:600;margin-bottom:6px}.statvalue{font-size:30px;font-weight:600;padding:6px 0}
.statvalue.nodata{color:#999;font-size:16px;font-weight:400;padding:14px 0}
.muted{color:#777;font-size:12px;margin:2px 0}.empty{color:#999;padding:24px 0;text-align:center}
.error{color:#b3261e;background:#fdecea;padding:8px;border-radius:3px;font-size:12px;word-break:break-word}
.legend{font-size:11px;color:#444}.key{margin-right:10px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.table{overflow:auto;max-height:330px}table{border-collapse:collapse;width:100%;font-size:12px}
th{text-align:left;background:#f7f8fa;position:sticky;top:0}th,td{padding:3px 6px;border-bottom:1px solid #eee;
white-space:nowrap;max-width:340px;overflow:hidden;text-overflow:ellipsis}td.num{position:relative}
.cellbar{position:absolute;left:0;top:3px;bottom:3px;background:#3274d91f;z-index:0}
ul.alerts{list-style:none;padding:0;margin:6px 0}li.alert{background:#fff;border-left:4px solid #ff9830;
padding:6px 10px;margin-bottom:6px}li.alert.critical{border-color:#e02f44}li.alert.info{border-color:#3274d9}
.ok{color:#56a64b}svg.chart{display:block}
"""


def render_report(
    client: Any,
    database: str,
    *,
    window: timedelta | str = DEFAULT_WINDOW,
    end: datetime | None = None,
    dashboards: Sequence[Dashboard] = DASHBOARDS,
    title: str = "llmpulse",
    store_label: str | None = None,
) -> str:
    """The full HTML page for the last ``window`` (default 24 h) up to ``end`` (default now)."""
    # The plugin's $__timeFilter truncates to whole seconds: end on the next second to keep what was just written.
    stop = end or datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    time_range = TimeRange.last(parse_window(window), end=stop)
    sections: list[str] = []
    results: dict[str, Mapping[str, QueryResult]] = {}
    for dashboard in dashboards:
        html, panel_results = _section(client, database, dashboard, time_range)
        sections.append(html)
        results[dashboard.uid] = panel_results
    alerts = results.get(QUALITY.uid, {}).get("recent_alerts")
    if alerts is None:
        recent = next(p for p in QUALITY.panels if p.key == "recent_alerts")
        alerts = run_sql(client, database, recent.sql, time_range, default_variables(QUALITY))
    nav = "".join(f'<a href="#{escape(d.uid)}">{escape(d.title.split(" / ")[-1])}</a>' for d in dashboards)
    where = escape(store_label or f"database {database}")
    span = (
        f"window {time_range.start:%Y-%m-%d %H:%M} to {time_range.end:%Y-%m-%d %H:%M} UTC; "
        "each section is drawn over its data in the window"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} report</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{where} · {escape(span)} · generated "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC</p></header><nav>{nav}</nav><main>"
        f'<section id="alerts"><h2>Alerts</h2>{_alert_list(alerts)}</section>{"".join(sections)}'
        "</main></body></html>"
    )
