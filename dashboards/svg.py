"""Charts as inline SVG, drawn in Python: the report needs no script and no network to show them.

Pure functions from numbers to markup: line/area charts over time, horizontal bar charts and a trace
waterfall, plus the value formatting Grafana's units imply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

PALETTE = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300")
COLORS = {"green": "#56a64b", "orange": "#ff9830", "red": "#e02f44", "blue": "#3274d9", "yellow": "#fade2a"}
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def color(name: str) -> str:
    return COLORS.get(name, name)


# --- value formatting --------------------------------------------------------------------------------


def _plain(value: float, digits: int = 3) -> str:
    """A number without exponent notation: 3 significant digits below 1000, K/M/B above 10 000."""
    size = abs(value)
    if size >= 10_000:
        return _scaled(value, ((1e9, "B"), (1e6, "M"), (1e3, "K")), digits)
    if size >= 100:
        return f"{value:.0f}"
    if size == 0 or size >= 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.1e}"


def _scaled(value: float, steps: Sequence[tuple[float, str]], digits: int = 3) -> str:
    for size, suffix in steps:
        if abs(value) >= size:
            return f"{_plain(value / size, digits)} {suffix}".rstrip()
    return _plain(value, digits)


def format_value(value: object, unit: str = "none", decimals: int | None = None) -> str:
    """A cell or axis value in the panel's unit, like Grafana would show it."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    digits = 3 if decimals is None else max(decimals, 1)
    if unit == "percentunit":
        return f"{_plain(number * 100, max(digits - 1, 1))}%"
    if unit == "percent":
        return f"{_plain(number, digits)}%"
    if unit == "s":
        if number and abs(number) < 1:
            return f"{_plain(number * 1000, digits)} ms"
        return f"{_plain(number, digits)} s"
    if unit == "bytes":
        return _scaled(number, ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")), digits) + (
            " B" if abs(number) < 1024 else ""
        )
    if unit == "currencyUSD":
        if abs(number) >= 1:
            return f"${number:,.2f}"
        return "$" + (f"{number:.6f}".rstrip("0").rstrip(".") or "0")
    if unit == "reqps":
        return f"{_plain(number, digits)} req/s"
    if unit == "watt":
        return f"{_plain(number, digits)} W"
    if unit == "celsius":
        return f"{_plain(number, digits)} °C"
    if unit == "joule":
        return _scaled(number, ((1e6, "MJ"), (1e3, "kJ")), digits) + (" J" if abs(number) < 1000 else "")
    if unit.startswith("suffix:"):
        return f"{_plain(number, digits)} {unit.split(':', 1)[1].strip()}"
    if unit == "short":
        return _scaled(number, ((1e9, "B"), (1e6, "M"), (1e3, "K")), digits)
    if isinstance(value, int):
        return str(value)
    return _plain(number, digits)


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


# --- time series -------------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]  # (epoch seconds, value), sorted by time


def _stack(series: list[Series]) -> list[Series]:
    times = sorted({t for s in series for t, _ in s.points})
    running = dict.fromkeys(times, 0.0)
    out = []
    for s in series:
        values = dict(s.points)
        for t in times:
            running[t] += values.get(t, 0.0)
        out.append(Series(s.name, [(t, running[t]) for t in times]))
    return out


def line_chart(
    series: list[Series],
    *,
    unit: str = "none",
    thresholds: Sequence[tuple[float, str]] = (),
    stacked: bool = False,
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 600,
    height: int = 220,
    start: float | None = None,
    end: float | None = None,
) -> str:
    """Lines (areas when stacked) over time with axes, grid and threshold lines."""
    drawn = _stack(series) if stacked else series
    values = [v for s in drawn for _, v in s.points if math.isfinite(v)]
    times = [t for s in drawn for t, _ in s.points]
    if not values or not times:
        return ""
    t0 = min(times) if start is None else start
    t1 = max(times) if end is None else end
    if t1 <= t0:
        t0, t1 = t0 - 30, t1 + 30
    low = min([*values, 0.0]) if y_min is None else y_min
    high = max(values) if y_max is None else y_max
    threshold_values = [v for v, _ in thresholds if low <= v <= high * 1.5]
    high = max([high, *threshold_values])
    ticks = nice_ticks(low, high)
    low, high = ticks[0], ticks[-1]
    left, right, top, bottom = 62, 10, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: float) -> float:
        return top + plot_h - (v - low) / (high - low) * plot_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" height="{height}" preserveAspectRatio="none" role="img">'
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e3e6ea"/>'
            f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" {_FONT} fill="#555">'
            f"{escape(format_value(tick, unit))}</text>"
        )
    for index in range(5):
        t = t0 + (t1 - t0) * index / 4
        label = datetime.fromtimestamp(t, tz=timezone.utc).strftime(_tick_format(t1 - t0))
        anchor = "start" if index == 0 else "end" if index == 4 else "middle"
        parts.append(f'<text x="{x(t):.1f}" y="{height - 6}" text-anchor="{anchor}" {_FONT} fill="#555">{label}</text>')
    for value, name in thresholds:
        if low <= value <= high:
            parts.append(
                f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                f'stroke="{color(name)}" stroke-dasharray="5,4"/>'
            )
    order = list(enumerate(drawn))
    for index, s in reversed(order) if stacked else order:
        points = [(t, v) for t, v in s.points if math.isfinite(v)]
        if not points:
            continue
        stroke = PALETTE[index % len(PALETTE)]
        title = f"<title>{escape(s.name)}</title>"
        if len(points) == 1:
            t, v = points[0]
            parts.append(
                f'<circle class="series" cx="{x(t):.1f}" cy="{y(v):.1f}" r="4.5" fill="{stroke}">{title}</circle>'
            )
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(points))
        if stacked:
            area = f"{path} L{x(points[-1][0]):.1f},{y(low):.1f} L{x(points[0][0]):.1f},{y(low):.1f} Z"
            parts.append(f'<path d="{area}" fill="{stroke}" fill-opacity="0.35" stroke="none"/>')
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{stroke}" stroke-width="1.6">{title}</path>')
    parts.append("</svg>")
    return "".join(parts)


def _tick_format(seconds: float) -> str:
    """Time labels fine enough that five ticks over ``seconds`` differ: seconds under ten minutes, dates past two days."""
    if seconds < 600:
        return "%H:%M:%S"
    return "%H:%M" if seconds <= 2 * 86400 else "%m-%d %H:%M"


def legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


# --- bars and waterfall ------------------------------------------------------------------------------


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, unit: str = "none", width: int = 600) -> str:
    """Horizontal bars, one per label."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    high = max(max(finite), 0.0) or 1.0
    row, left, right = 26, 170, 80
    height = row * len(labels) + 6
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'height="{height}" role="img">'
    ]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        top = 3 + index * row
        text = escape(label if len(label) <= 28 else label[:27] + "…")
        parts.append(f'<text x="{left - 6}" y="{top + 16}" text-anchor="end" {_FONT} fill="#333">{text}</text>')
        if value is None or not math.isfinite(value):
            continue
        bar = max((value / high) * (width - left - right), 1.0)
        parts.append(
            f'<rect class="series" x="{left}" y="{top + 3}" width="{bar:.1f}" height="{row - 8}" '
            f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(label)}</title></rect>'
            f'<text x="{left + bar + 4:.1f}" y="{top + 16}" {_FONT} fill="#333">{escape(format_value(value, unit))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Span:
    span_id: str
    parent_id: str
    name: str
    service: str
    start_ms: float
    duration_ms: float
    error: bool


def _ordered(spans: Sequence[Span]) -> list[tuple[int, Span]]:
    """Depth-first: parents before children, siblings by start time."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in ids else "", []).append(span)
    out: list[tuple[int, Span]] = []

    def visit(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ms):
            out.append((depth, span))
            visit(span.span_id, depth + 1)

    visit("", 0)
    return out


def waterfall(spans: Sequence[Span], *, width: int = 1000) -> str:
    """A trace as nested bars on a time axis (the shape of Grafana's trace view)."""
    if not spans:
        return ""
    start = min(s.start_ms for s in spans)
    total = max(s.start_ms + s.duration_ms for s in spans) - start or 1.0
    row, left = 22, 300
    rows = _ordered(spans)
    height = row * len(rows) + 24
    plot = width - left - 70
    parts = [
        f'<svg class="chart waterfall" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" height="{height}" role="img">'
    ]
    for index in range(5):
        xpos = left + plot * index / 4
        parts.append(
            f'<line x1="{xpos:.1f}" x2="{xpos:.1f}" y1="0" y2="{height - 18}" stroke="#e3e6ea"/>'
            f'<text x="{xpos:.1f}" y="{height - 4}" text-anchor="middle" {_FONT} fill="#555">'
            f"{escape(format_value(total * index / 4 / 1000, 's'))}</text>"
        )
    for index, (depth, span) in enumerate(rows):
        top = index * row
        label = escape(f"{span.service}: {span.name}")
        parts.append(f'<text x="{4 + 12 * depth}" y="{top + 15}" {_FONT} fill="#333">{label}</text>')
        x0 = left + (span.start_ms - start) / total * plot
        bar = max(span.duration_ms / total * plot, 1.5)
        fill = COLORS["red"] if span.error else PALETTE[depth % len(PALETTE)]
        parts.append(
            f'<rect class="series" x="{x0:.1f}" y="{top + 4}" width="{bar:.1f}" height="{row - 8}" fill="{fill}">'
            f"<title>{label} {escape(format_value(span.duration_ms / 1000, 's'))}</title></rect>"
            f'<text x="{x0 + bar + 4:.1f}" y="{top + 15}" {_FONT} fill="#555">'
            f"{escape(format_value(span.duration_ms / 1000, 's'))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
