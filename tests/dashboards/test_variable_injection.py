"""Text-box variables cannot change a panel's SQL (issue 10, defect 8).

A Grafana viewer types ``trace_id`` and the two prices; before the fix they were pasted into the SQL
unescaped (``WITH '${trace_id}'``, ``price_per_kwh=${price_per_kwh}``) and a crafted trace id returned
stored prompts. Now each goes through Grafana's ``percentencode`` format (no quote, no backslash survive
it) and a typed check in SQL (32 hex digits, a Float64). These tests render hostile values through the
project's macro expander, which implements Grafana's formats, and run them on chDB.
"""

from __future__ import annotations

import re

import pytest
from llmpulse.dashboards.macros import _TEMPLATE_VARIABLE, ALL, TimeRange, expand, format_value
from llmpulse.dashboards.model import Dashboard, Panel
from llmpulse.dashboards.panels import DASHBOARDS, TRACES
from llmpulse.dashboards.store import default_variables, run_sql

HOSTILE = (
    "' UNION SELECT PromptText FROM llm_calls --",
    "x' AS __gf_trace_id SELECT PromptText AS traceID FROM llm_calls -- ",
    "\\'",
    "\\' UNION SELECT PromptText FROM llm_calls -- ",
    "\\\\' OR 1=1 -- ",
    "1; DROP TABLE llm_calls",
    "1 OR 1=1",
    "0) OR (1=1",
    "1, price_per_gpu_hour=1e9",
    "C:\\path\\to\\",
    "1\nUNION ALL SELECT PromptText FROM llm_calls",
    "1 /* comment */",
    "1 -- comment",
    "%27 OR 1=1 %23",
    '" OR ""="',
    "$__fromTime",
    "${price_per_kwh}",
    "é 日本",
)


def _textboxes(dashboard: Dashboard) -> list[str]:
    return [v.name for v in dashboard.variables if v.kind == "textbox"]


def _uses(panel: Panel, name: str) -> bool:
    return re.search(rf"\$\{{{name}[:}}]|\${name}\b|\[\[{name}", panel.sql) is not None


CASES = [
    (dashboard, panel, name)
    for dashboard in DASHBOARDS
    for panel in dashboard.panels
    for name in _textboxes(dashboard)
    if _uses(panel, name)
]


def test_every_textbox_reference_is_percent_encoded():
    assert {name for _, _, name in CASES} == {"trace_id", "price_per_kwh", "price_per_gpu_hour", "session"}
    for _, panel, name in CASES:
        references = re.findall(rf"\$\{{{name}(?::(\w+))?\}}|\${name}\b|\[\[{name}[^\]]*\]\]", panel.sql)
        assert references and all(fmt == "percentencode" for fmt in references), (panel.key, name, references)


def test_no_variable_reaches_any_sql_unencoded():
    """Panels and query variables alike: only ``${var:percentencode}``; a bare ``$var`` only as the
    second argument of ``$__conditionalAll``, which the plugin's frontend removes before interpolation."""
    sqls = [(p.key, p.sql) for d in DASHBOARDS for p in d.panels]
    sqls += [(v.name, v.sql) for d in DASHBOARDS for v in d.variables if v.sql]
    for key, sql in sqls:
        without_all_args = re.sub(r", \$\w+\)", ")", sql)
        for match in _TEMPLATE_VARIABLE.finditer(without_all_args):
            name = match.group(1) or match.group(2) or match.group(4)
            if name.startswith("__"):
                continue  # $__from/$__to (numbers) and the backend macros
            assert (match.group(3) or match.group(6)) == "percentencode", (key, match.group(0))


def _secrets(ch, database: str) -> set[str]:
    rows = ch.query(f"SELECT DISTINCT PromptText FROM {database}.llm_calls WHERE PromptText != ''").result_rows
    return {row[0] for row in rows}


def _leaks(rows: list[tuple], secrets: set[str]) -> list[str]:
    return [s for row in rows for cell in row for s in secrets if s in str(cell)]


@pytest.mark.parametrize(("dashboard", "panel", "name"), CASES, ids=[f"{p.key}:{n}" for _, p, n in CASES])
def test_hostile_textbox_values_change_nothing(ch, seeded, seeded_range: TimeRange, dashboard, panel, name):
    secrets = _secrets(ch, seeded.database)
    assert secrets, "the seed stores prompts, so a leak would show"
    # What a value that is not a trace id / not a number must give: no trace, a price of 0. A session
    # box shows the prompts of the session it names: a hostile value names none, so it shows nothing.
    neutral = {"trace_id": "", "session": "no-such-session"}.get(name, "0")
    baseline = run_sql(
        ch, seeded.database, panel.sql, seeded_range, default_variables(dashboard, {name: neutral}), raise_errors=True
    )
    for value in HOSTILE:
        variables = default_variables(dashboard, {name: value})
        result = run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)
        assert result.columns == baseline.columns, (value, result.sql)
        assert not _leaks(result.rows, secrets), (value, result.sql)
        if name in ("trace_id", "session"):
            assert result.rows == [], (value, result.sql)
        else:
            assert len(result.rows) == len(baseline.rows), (value, result.sql)
    # the tables are all still there (no statement ran after the SELECT)
    assert ch.query(f"SELECT count() FROM {seeded.database}.llm_calls").result_rows[0][0] > 0


DROP_DOWN_HOSTILE = (
    "') OR 1=1 --",
    "x') UNION ALL SELECT PromptText FROM llm_calls -- ",
    "\\') OR 1=1 -- ",
    "a\\",
    "1\nOR 1=1",
    "chat-app' OR '1'='1",
    "/* x */ 1",
    "%27",
)
QUERY_CASES = [
    (dashboard, panel)
    for dashboard in DASHBOARDS
    for panel in dashboard.panels
    if any(v.kind == "query" and f"${v.name}" in panel.sql for v in dashboard.variables)
]


@pytest.mark.parametrize(("dashboard", "panel"), QUERY_CASES, ids=[p.key for _, p in QUERY_CASES])
def test_hostile_drop_down_values_change_nothing(ch, seeded, seeded_range: TimeRange, dashboard, panel):
    """A drop-down value comes from the store (any OTLP sender sets service.name) or from the URL
    (``?var-service=...``): picked alone it matches nothing, next to a real value it adds nothing."""
    secrets = _secrets(ch, seeded.database)
    names = [v.name for v in dashboard.variables if v.kind == "query"]

    def run(values: list[str]):
        variables = default_variables(dashboard, dict.fromkeys(names, values))
        return run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)

    nothing = run(["no-such-value"])
    for value in DROP_DOWN_HOSTILE:
        result = run([value])
        assert result.columns == nothing.columns and repr(result.rows) == repr(nothing.rows), (value, result.sql)
        assert not _leaks(result.rows, secrets), (value, result.sql)


def test_drop_down_values_still_filter(ch, seeded, seeded_range: TimeRange):
    from llmpulse.dashboards.panels import LLM_OVERVIEW

    panel = next(p for p in LLM_OVERVIEW.panels if p.key == "usage_by_model")

    def models(values: dict) -> set:
        result = run_sql(ch, seeded.database, panel.sql, seeded_range, default_variables(LLM_OVERVIEW, values))
        return set(result.column("model"))

    every = models({})
    assert len(every) >= 2
    one = sorted(m for m in every if m)[0]
    assert models({"model": [one]}) == {one}
    assert models({"model": [one, "x') OR 1=1 --"]}) == {one}
    assert models({"model": sorted(every)}) == every


def test_typed_values_still_work(ch, seeded, seeded_range: TimeRange):
    from llmpulse.dashboards.panels import GPU

    panel = next(p for p in GPU.panels if p.key == "gpu_cost_by_model")

    def cost(kwh: str) -> list:
        variables = default_variables(GPU, {"price_per_kwh": kwh, "price_per_gpu_hour": "0"})
        result = run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)
        return result.column("gpu_cost_per_request")

    zero, some, exponent = cost("0"), cost("0.3"), cost("3e-1")
    assert zero and all(c == 0 for c in zero)
    assert some == exponent and any(c > 0 for c in some)
    assert cost(" 0.3") == zero  # not a number as typed: 0, not an error

    trace = next(p for p in TRACES.panels if p.key == "trace_view")
    slowest = next(p for p in TRACES.panels if p.key == "slowest_traces")
    trace_id = run_sql(ch, seeded.database, slowest.sql, seeded_range, default_variables(TRACES)).rows[0][0]
    found = run_sql(ch, seeded.database, trace.sql, seeded_range, default_variables(TRACES, {"trace_id": trace_id}))
    assert found.rows and set(found.column("traceID")) == {trace_id}


# Grafana's formatters (grafana/scenes formatRegistry.ts), on the values its docs use.
@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        (None, ["a", "b"], "'a','b'"),  # the ClickHouse plugin's own format
        (None, "it's", "it's"),
        ("raw", ["a", "b"], "a,b"),
        ("csv", ["test1", "test2"], "test1,test2"),
        ("sqlstring", ["test'1", 'test"2'], "'test''1','test\\\"2'"),
        ("sqlstring", "a\\", "'a\\'"),  # backslashes pass: unsafe in ClickHouse, hence percentencode
        ("singlequote", ["test'1", "test2"], "'test\\'1','test2'"),
        ("doublequote", ["test1", 'te"st2'], '"test1","te\\"st2"'),
        ("percentencode", ["foo()bar BAZ", "test2"], "%7Bfoo%28%29bar%20BAZ%2Ctest2%7D"),
        ("percentencode", "' OR 1=1 -- \\", "%27%20OR%201%3D1%20--%20%5C"),
        ("json", ["test1", "test2"], '["test1","test2"]'),
        ("glob", ["test1", "test2"], "{test1,test2}"),
        ("nosuchformat", ["test1", "test2"], "{test1,test2}"),  # Grafana falls back to glob
    ],
)
def test_formats_match_grafana(fmt, value, expected):
    assert format_value(value, fmt) == expected


def test_format_syntax_in_sql(seeded_range: TimeRange):
    sql = "a=${v:sqlstring} b=[[v:percentencode]] c=${v} d=$v"
    assert expand(sql, seeded_range, {"v": "x'y"}) == "a='x''y' b=x%27y c=x'y d=x'y"
    # a query variable at "All" expands to its options, each formatted
    assert expand("${s:sqlstring}", seeded_range, {"s": [ALL]}, {"s": ["p", "q'"]}) == "'p','q'''"
