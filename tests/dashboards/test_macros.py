"""The macro expander against the plugin's own definitions.

Expected strings follow grafana/clickhouse-datasource ``pkg/macros/macros.go`` (@005050e: ``toDateTime(<unix s>)``,
``toStartOfInterval(toDateTime(col), INTERVAL n second)``), the SDK's ``data/sqlutil/macros.go`` (longest name
first, bracket-balanced arguments) and ``src/data/CHDatasource.ts`` (``applyConditionalAll`` and ``format``).
The time range is the one of the plugin's ``macros_test.go`` (2014-11-12T11:45:26.371Z .. 2015-11-12T11:45:26.371Z).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from llmpulse.dashboards.macros import ALL, MacroError, TimeRange, expand, nice_interval

FROM = datetime(2014, 11, 12, 11, 45, 26, 371000, tzinfo=timezone.utc)
TO = datetime(2015, 11, 12, 11, 45, 26, 371000, tzinfo=timezone.utc)
RANGE = TimeRange(FROM, TO, timedelta(seconds=20))


def test_time_macros_expand_like_the_plugin():
    assert expand("$__fromTime", RANGE) == "toDateTime(1415792726)"
    assert expand("$__toTime", RANGE) == "toDateTime(1447328726)"
    assert expand("$__fromTime_ms", RANGE) == "fromUnixTimestamp64Milli(1415792726371)"
    assert (
        expand("WHERE $__timeFilter(ts)", RANGE)
        == "WHERE ts >= toDateTime(1415792726) AND ts <= toDateTime(1447328726)"
    )
    assert expand("$__timeFilter_ms(ts)", RANGE) == (
        "ts >= fromUnixTimestamp64Milli(1415792726371) AND ts <= fromUnixTimestamp64Milli(1447328726371)"
    )
    assert expand("$__dateFilter(d)", RANGE) == "d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')"
    assert expand("$__timeInterval(col)", RANGE) == "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"
    assert expand("$__timeInterval_ms(col)", RANGE) == (
        "toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 millisecond)"
    )
    assert expand("INTERVAL $__interval_s second", RANGE) == "INTERVAL 20 second"
    assert expand("$__interval / $__interval_ms", RANGE) == "20s / 20000"


def test_interval_below_a_second_is_one_second():
    short = TimeRange(FROM, TO, timedelta(milliseconds=200))
    assert expand("$__interval_s", short) == "1"


def test_arguments_are_bracket_balanced_and_longer_names_win():
    assert expand("$__timeFilter(toDateTime(x, 'UTC'))", RANGE) == (
        "toDateTime(x, 'UTC') >= toDateTime(1415792726) AND toDateTime(x, 'UTC') <= toDateTime(1447328726)"
    )
    assert "_ms" not in expand("$__timeFilter_ms(a) AND $__timeFilter(b)", RANGE)


def test_bad_macro_arguments_are_refused_like_the_plugin():
    with pytest.raises(MacroError, match="missing close bracket"):
        expand("$__timeFilter(ts", RANGE)
    with pytest.raises(MacroError, match="expected 1 argument, received 2"):
        expand("$__timeFilter(a, b)", RANGE)


def test_conditional_all_drops_the_condition_for_all_and_empty():
    sql = "WHERE $__conditionalAll(ServiceName IN (${service}), $service) AND x"
    assert expand(sql, RANGE, {"service": ALL}) == "WHERE 1=1 AND x"
    assert expand(sql, RANGE, {"service": [ALL]}) == "WHERE 1=1 AND x"
    assert expand(sql, RANGE, {"service": ""}) == "WHERE 1=1 AND x"
    assert expand(sql, RANGE, {"service": ["a", "b"]}) == "WHERE ServiceName IN ('a','b') AND x"


def test_variables_use_the_plugin_format_and_globals_are_epoch_ms():
    variables = {"one": "plain", "many": ["x", "y"]}
    assert expand("'$one' ${one} IN (${many}) [[one]]", RANGE, variables) == "'plain' plain IN ('x','y') plain"
    assert expand("f(start_ms=$__from, end_ms=${__to})", RANGE) == "f(start_ms=1415792726371, end_ms=1447328726371)"
    assert expand("$unknown", RANGE, variables) == "$unknown"


def test_time_range_refuses_naive_and_empty():
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRange(datetime(2025, 1, 1), TO)
    with pytest.raises(ValueError, match="end after"):
        TimeRange(TO, FROM)


def test_nice_interval_rounds_up_to_round_steps():
    assert nice_interval(timedelta(seconds=3)) == timedelta(seconds=5)
    assert nice_interval(timedelta(seconds=50)) == timedelta(minutes=1)
    assert nice_interval(timedelta(hours=24) / 120) == timedelta(minutes=15)
    assert TimeRange.last(timedelta(hours=1), end=TO).interval == timedelta(seconds=30)
