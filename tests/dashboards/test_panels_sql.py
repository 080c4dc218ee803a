"""Every panel's SQL, macros expanded as Grafana would, runs on the real schema (chDB) and returns its columns."""

from __future__ import annotations

from datetime import datetime
from numbers import Number

import pytest
from llmpulse.dashboards.macros import MacroError
from llmpulse.dashboards.panels import DASHBOARDS, LLM_OVERVIEW, TRACES, all_panels
from llmpulse.dashboards.store import default_variables, qualify, render_sql, run_sql, variable_options

PANELS = all_panels()


def _trace_id(ch, seeded, seeded_range) -> str:
    slowest = next(p for p in TRACES.panels if p.key == "slowest_traces")
    result = run_sql(ch, seeded.database, slowest.sql, seeded_range, default_variables(TRACES), raise_errors=True)
    return result.rows[0][0]


@pytest.mark.parametrize(("dashboard", "panel"), PANELS, ids=[f"{d.uid}:{p.key}" for d, p in PANELS])
def test_panel_sql_runs_and_returns_its_columns(ch, seeded, seeded_range, dashboard, panel):
    overrides = {"trace_id": _trace_id(ch, seeded, seeded_range)} if panel.key == "trace_view" else {}
    variables = default_variables(dashboard, overrides)
    result = run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)
    missing = [c for c in panel.columns if c not in result.columns]
    assert not missing, f"{panel.key} lacks columns {missing}; got {result.columns}"
    assert result.rows, f"{panel.key} returned no rows on the seeded store:\n{result.sql}"
    if panel.visualization == "timeseries":
        times = result.column("time")
        assert all(isinstance(t, datetime) for t in times)
        numeric = [c for c in panel.columns[1:] if any(isinstance(v, Number) for v in result.column(c))]
        assert numeric, f"{panel.key}: no numeric value column in {result.types}"
    if panel.visualization == "stat":
        assert len(result.rows) == 1 and isinstance(result.rows[0][0], Number)


def test_time_series_have_many_points(ch, seeded, seeded_range):
    panel = next(p for p in LLM_OVERVIEW.panels if p.key == "latency_quantiles")
    result = run_sql(ch, seeded.database, panel.sql, seeded_range, default_variables(LLM_OVERVIEW), raise_errors=True)
    assert len(result.rows) >= 60  # 90 minutes of history in 1-minute buckets


def test_trace_view_returns_the_trace_frame(ch, seeded, seeded_range):
    panel = next(p for p in TRACES.panels if p.key == "trace_view")
    trace_id = _trace_id(ch, seeded, seeded_range)
    variables = default_variables(TRACES, {"trace_id": trace_id})
    result = run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)
    assert set(result.column("traceID")) == {trace_id}
    assert all(isinstance(tags, list) for tags in result.column("tags"))
    assert set(result.column("statusCode")) <= {0, 2}


def test_variables_filter_the_panels(ch, seeded, seeded_range):
    panel = next(p for p in LLM_OVERVIEW.panels if p.key == "requests_by_model")
    variables = default_variables(LLM_OVERVIEW, {"service": ["chat-app"], "model": ["gpt-4o-mini"]})
    result = run_sql(ch, seeded.database, panel.sql, seeded_range, variables, raise_errors=True)
    assert result.rows and set(result.column("model")) == {"gpt-4o-mini"}
    everything = run_sql(ch, seeded.database, panel.sql, seeded_range, default_variables(LLM_OVERVIEW))
    assert len(set(everything.column("model"))) > 1


def test_query_variables_list_the_stored_values(ch, seeded, seeded_range):
    for dashboard in DASHBOARDS:
        values = default_variables(dashboard)
        for variable in dashboard.variables:
            options = variable_options(ch, seeded.database, variable, seeded_range, values)
            if variable.kind == "query":
                assert options, f"{dashboard.uid}: variable {variable.name} lists nothing"
    service = variable_options(ch, seeded.database, LLM_OVERVIEW.variables[0], seeded_range, {})
    assert "chat-app" in service


def test_every_table_reference_is_qualified():
    sql = render_sql(TRACES.panels[-1].sql, "db1", _any_range(), {"trace_id": "abc"})
    assert 'FROM "db1"."otel_traces_trace_id_ts"' in sql and 'FROM "db1"."otel_traces"' in sql
    assert qualify("SELECT 1 FROM (SELECT x FROM llm_calls) JOIN other.t", "d") == (
        'SELECT 1 FROM (SELECT x FROM "d"."llm_calls") JOIN other.t'
    )
    with pytest.raises(ValueError, match="bad database name"):
        qualify("SELECT 1", 'x"; DROP')


def test_leftover_variables_are_an_error():
    with pytest.raises(MacroError, match="unexpanded"):
        render_sql("SELECT $nothing_defined_like_this", "d", _any_range(), {})
    with pytest.raises(MacroError, match=r"\$__unknownMacro"):
        render_sql("SELECT $__unknownMacro(x)", "d", _any_range(), {})


def _any_range():
    from datetime import timedelta, timezone

    from llmpulse.dashboards.macros import TimeRange

    return TimeRange.last(timedelta(hours=1), end=datetime(2025, 1, 1, tzinfo=timezone.utc))
