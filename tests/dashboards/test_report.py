"""The built-in HTML dashboard: rendered from the store, then loaded in a real headless Chromium."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from llmpulse.agent.cli import main
from llmpulse.dashboards.panels import DASHBOARDS
from llmpulse.dashboards.report import render_report
from llmpulse.dashboards.svg import PALETTE

from .headless import find_chromium, load_page


@pytest.fixture(scope="module")
def report_html(ch, seeded) -> str:
    return render_report(ch, seeded.database, window="3h", end=seeded.end + timedelta(minutes=1))


def test_report_shows_every_panel_without_errors(report_html):
    assert 'class="error"' not in report_html
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            assert f'id="{dashboard.uid}-{panel.key}"' in report_html
    # Self-contained: nothing is fetched at view time (the SVG namespace URI is a name, not a request).
    for fetch in ("<script", "<link", " src=", "url(", 'href="http', "@import"):
        assert fetch not in report_html
    assert report_html.count('class="empty"') == 0


def test_report_lists_the_analyzer_alerts(report_html):
    alerts = report_html.split('<section id="alerts">', 1)[1].split("</section>", 1)[0]
    assert alerts.count('<li class="alert') == 4
    assert "drift: prompt_embedding_mmd2" in alerts and "gpt-4o-mini" in alerts


def test_report_on_an_empty_store_says_no_data(ch, database):
    from llmpulse.agent.store.schema import SchemaOptions, apply

    apply(ch, SchemaOptions(database=database))
    html = render_report(ch, database, window="1h")
    assert "No analyzer alerts in this window" in html and 'class="error"' not in html
    panels = [p for d in DASHBOARDS for p in d.panels]
    assert html.count("No data in this window") == sum(p.visualization != "stat" for p in panels)
    stats = re.findall(r'<div class="statvalue[^"]*"[^>]*>([^<]*)<', html)
    assert len(stats) == sum(p.visualization == "stat" for p in panels)
    assert set(stats) <= {"No data", "0", "0 req/s"}, stats


def test_report_shows_query_errors_in_place(ch):
    html = render_report(ch, "no_such_database_here", window="1h")
    assert html.count('class="error"') >= sum(len(d.panels) for d in DASHBOARDS)


def test_cli_report(tmp_path, store_dsn, seeded, capsys):
    out = tmp_path / "r" / "report.html"
    assert main(["report", "--dsn", store_dsn, "--database", seeded.database, "--out", str(out), "--window", "3h"]) == 0
    assert f"report written to {out}" in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "--dsn", store_dsn, "--window", "a while", "--out", str(out)]) == 2
    assert "bad duration 'a while'" in capsys.readouterr().err


# --- in a real browser -------------------------------------------------------------------------------

FACTS = """(() => {
  const charts = [...document.querySelectorAll('figure.panel svg.chart')].map(svg => {
    const r = svg.getBoundingClientRect();
    const drawn = [...svg.querySelectorAll('.series')].filter(e => {
      const b = e.getBBox(); return (b.width > 0 || b.height > 0);
    }).length;
    const boxes = [...svg.querySelectorAll('.series')].map(e => e.getBBox()).filter(b => b.width > 0 || b.height > 0);
    const left = Math.min(...boxes.map(b => b.x)), right = Math.max(...boxes.map(b => b.x + b.width));
    return {panel: svg.closest('figure').id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, drawn,
            viewBox: svg.viewBox.baseVal.width, left, right};
  });
  const stat = id => (document.querySelector('#' + id + ' .statvalue') || {}).textContent;
  return {charts, panels: document.querySelectorAll('figure.panel').length,
          stats: [...document.querySelectorAll('.statvalue')].map(e => e.textContent),
          rps: stat('llmpulse-llm-overview-requests_per_second'),
          spans: [...document.querySelectorAll('p.span')].map(e => e.textContent)};
})()"""


def _palette_pixels(image, box) -> int:
    """Pixels in ``box`` within a small distance of a series colour (lines, areas and bars are drawn in these)."""
    colours = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in PALETTE]
    crop = image.crop(box).convert("RGB")
    count = 0
    for pixel, n in crop.getcolors(maxcolors=1 << 20) or []:
        if any(sum(abs(a - b) for a, b in zip(n, c, strict=True)) < 60 for c in colours):
            count += pixel
    return count


@pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium binary (apt-get install -y chromium) to load the report in a real headless browser",
)
def test_report_loads_in_chromium_and_draws_its_charts(report_html, tmp_path):
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(report_html)
    run = load_page(find_chromium(), page, FACTS, tmp_path / "profile")
    assert run.console_errors == []
    facts = run.facts
    assert facts["panels"] == sum(len(d.panels) for d in DASHBOARDS)
    charts = facts["charts"]
    expected = sum(1 for d in DASHBOARDS for p in d.panels if p.visualization in ("timeseries", "barchart", "traces"))
    assert len(charts) == expected
    bad = [c for c in charts if not (c["drawn"] > 0 and c["w"] > 100 and c["h"] > 20)]
    assert not bad, bad
    assert all(re.search(r"\d", s) for s in facts["stats"])

    image = Image.open(io.BytesIO(run.screenshot))
    (tmp_path / "report.png").write_bytes(run.screenshot)
    assert image.width >= 1400 and image.height > 3000
    blank = [
        c["panel"]
        for c in charts
        if _palette_pixels(image, (int(c["x"]), int(c["y"]), int(c["x"] + c["w"]), int(c["y"] + c["h"]))) < 25
    ]
    assert not blank, f"charts with nothing drawn in the screenshot: {blank}"


def test_each_section_is_drawn_over_its_data(ch, seeded):
    """A window much longer than the data: each dashboard's axis is its data's span, to the second."""
    from datetime import datetime, timezone

    from llmpulse.dashboards.macros import TimeRange
    from llmpulse.dashboards.panels import LLM_OVERVIEW
    from llmpulse.dashboards.report import data_span

    end = seeded.end + timedelta(minutes=1)
    window = TimeRange.last(timedelta(days=7), end=end)
    span = data_span(ch, seeded.database, LLM_OVERVIEW, window)
    first, last, calls = ch.query(
        "SELECT min(Timestamp), max(Timestamp), count() FROM {db:Identifier}.llm_calls",
        parameters={"db": seeded.database},
    ).result_rows[0]
    first, last = (t.replace(tzinfo=timezone.utc) for t in (first, last))
    assert span.start == first.replace(microsecond=0) and span.end == last.replace(microsecond=0) + timedelta(seconds=1)
    assert span.interval <= (span.end - span.start) / 60
    html = render_report(ch, seeded.database, window="7d", end=end, dashboards=(LLM_OVERVIEW,))
    shown = float(re.search(r'requests_per_second"[^>]*>.*?class="statvalue"[^>]*>([\d.]+) req/s', html).group(1))
    assert shown == pytest.approx(calls / (span.end - span.start).total_seconds(), rel=0.01)
    assert f'data-from="{span.from_ms}" data-to="{span.to_ms}"' in html
    # no data in the window: drawn over the window, and said so
    empty = data_span(
        ch,
        seeded.database,
        LLM_OVERVIEW,
        TimeRange.last(timedelta(hours=1), end=datetime(2020, 1, 1, tzinfo=timezone.utc)),
    )
    assert empty is None
