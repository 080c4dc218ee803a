"""The analyzer framework: windows, results, options, segments, multiple testing, and the store shell."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from llmpulse.analyzers.framework import registry
from llmpulse.analyzers.framework.errors import AnalyzerInputError
from llmpulse.analyzers.framework.options import resolve_options
from llmpulse.analyzers.framework.results import (
    ERROR,
    NOT_ENOUGH_DATA,
    Alert,
    AnalysisResult,
    alerts_from,
    not_enough_data,
    result_fields,
)
from llmpulse.analyzers.framework.runner import run_all, run_analyzer
from llmpulse.analyzers.framework.segments import iter_segments, parse_segment_by
from llmpulse.analyzers.framework.statistics import adjust_for_multiple_testing, benjamini_hochberg
from llmpulse.analyzers.framework.windows import Window, parse_duration, parse_time, windows
from llmpulse.analyzers.io.store import AnalysisStore

from tests.analyzers.framework_helpers import NOW, call_row, create_schema, insert_calls, minutes

# -- windows ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("45s", timedelta(seconds=45)),
        (" 2w ", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),  # the one grammar of every command: fractions, ms, bare seconds
        ("90", timedelta(seconds=90)),
        ("1500ms", timedelta(seconds=1.5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "-1h", "1y", "1 hour", "7dd"])
def test_parse_duration_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"bad duration .*use a number and ms, s, m, h, d or w, e.g. 30s, 5m, 1h, 7d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0h", "0", "3651d", "9" * 400 + "s"])
def test_parse_duration_rejects_empty_and_endless_windows(text: str) -> None:
    with pytest.raises(ValueError, match=r"bad duration .*a window must be positive and at most 3650d"):
        parse_duration(text)


def test_windows_current_then_reference_before_it() -> None:
    window, reference = windows("1h", "7d", end=NOW)
    assert window == Window(NOW - timedelta(hours=1), NOW)
    assert reference == Window(NOW - timedelta(hours=1, days=7), NOW - timedelta(hours=1))
    assert window.start.tzinfo is timezone.utc


def test_window_rejects_naive_and_inverted_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(datetime(2025, 1, 1), datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="must end after it starts"):
        Window(NOW, NOW)


def test_window_converts_other_zones_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    window = Window(datetime(2025, 6, 1, 14, 0, tzinfo=plus2), datetime(2025, 6, 1, 15, 0, tzinfo=plus2))
    assert window.start == datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert window.start.utcoffset() == timedelta(0)


def test_parse_time() -> None:
    assert parse_time("2025-06-01T14:00:00+02:00") == datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="give a zone"):
        parse_time("2025-06-01T12:00:00")
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


# -- results and alerts -------------------------------------------------------------------------------


def _fields(segment: dict[str, str] | None = None) -> dict:
    window, reference = windows("1h", "7d", end=NOW)
    return result_fields(analyzer="t", version="1", window=window, reference=reference, segment=segment or {})


def test_result_stores_non_finite_numbers_as_null_and_only_ok_results_alert() -> None:
    result = AnalysisResult(
        **_fields(), metric="m", value=math.nan, p_value=np.float64(0.01), threshold=math.inf, alert=True
    )
    assert result.value is None and result.p_value == 0.01 and result.threshold is None and result.alert
    skipped = AnalysisResult(**_fields(), metric="m", alert=True, status=NOT_ENOUGH_DATA)
    assert not skipped.alert
    with pytest.raises(ValueError, match="status must be one of"):
        AnalysisResult(**_fields(), metric="m", status="fine")


def test_not_enough_data_row_says_why() -> None:
    window, reference = windows("1h", "7d", end=NOW)
    row = not_enough_data(
        analyzer="t",
        version="1",
        window=window,
        reference=reference,
        segment={"model": "a"},
        metric="m",
        n_current=3,
        n_reference=50,
        minimum=30,
    )
    assert row.status == NOT_ENOUGH_DATA and not row.alert and row.p_value is None
    assert row.summary == "not enough data: 3 current, 50 reference (minimum 30 per window)"


def test_alert_from_result_has_title_and_message() -> None:
    result = AnalysisResult(
        **_fields({"model": "gpt", "service": "api"}),
        metric="latency_p95",
        value=1.5,
        p_value=0.001,
        threshold=0.05,
        alert=True,
        summary="p95 latency up 50%",
    )
    (alert,) = alerts_from([result, AnalysisResult(**_fields(), metric="x")])
    assert isinstance(alert, Alert)
    assert alert.title == "t: latency_p95 (model=gpt, service=api)"
    assert alert.message == "p95 latency up 50%"
    plain = Alert.from_result(AnalysisResult(**_fields(), metric="m", value=0.25, p_value=0.002, threshold=0.05))
    assert plain.message == "m = 0.25, p = 0.002, threshold 0.05" and "all traffic" in plain.title


# -- options and segments -----------------------------------------------------------------------------


def test_resolve_options_coerces_to_the_default_types_and_ignores_unknown_keys() -> None:
    defaults = {"alpha": 0.05, "permutations": 500, "segment_by": ["model"], "with_responses": True}
    got = resolve_options(
        defaults,
        {"alpha": "0.01", "permutations": "1000", "segment_by": "service,model", "with_responses": "no", "other": 1},
    )
    assert got == {"alpha": 0.01, "permutations": 1000, "segment_by": ["service", "model"], "with_responses": False}
    with pytest.raises(AnalyzerInputError, match=r"option permutations: expected int, got '1\.5'"):
        resolve_options(defaults, {"permutations": "1.5"})
    with pytest.raises(AnalyzerInputError, match="alpha must be between 0 and 1"):
        resolve_options(defaults, {"alpha": 5})


def test_parse_segment_by_names_the_unknown_key() -> None:
    assert parse_segment_by("model, prompt_version,model") == ["model", "prompt_version"]
    assert parse_segment_by("") == []
    with pytest.raises(AnalyzerInputError, match=r"unknown segment key\(s\) colour; choose from service, provider"):
        parse_segment_by("model,colour")


def test_iter_segments_covers_segments_seen_in_either_window() -> None:
    cur = pd.DataFrame({"RequestModel": ["a", "a", "b"], "x": [1, 2, 3]})
    ref = pd.DataFrame({"RequestModel": ["a", "c"], "x": [4, 5]})
    seen = {s["model"]: (list(c["x"]), list(r["x"])) for s, c, r in iter_segments(cur, ref, ["model"])}
    assert seen == {"a": ([1, 2], [4]), "b": ([3], []), "c": ([], [5])}
    ((segment, c, r),) = list(iter_segments(cur, ref, []))
    assert segment == {} and len(c) == 3 and len(r) == 2


def test_benjamini_hochberg_matches_the_textbook_computation() -> None:
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted: 0.01*4/1=0.04, 0.03*4/2=0.06, 0.04*4/3=0.0533 -> monotone 0.0533, 0.20*4/4=0.20
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20])


def test_adjust_for_multiple_testing_decides_on_adjusted_p_values() -> None:
    results = [
        AnalysisResult(**_fields({"model": str(i)}), metric="m", p_value=p, alert=p < 0.05)
        for i, p in enumerate([0.01, 0.04, 0.03, 0.20])
    ]
    results.append(AnalysisResult(**_fields({"model": "x"}), metric="m", status=NOT_ENOUGH_DATA))
    adjust_for_multiple_testing(results, 0.05, also=lambda r: r.segment["model"] != "2")
    assert [r.alert for r in results] == [True, False, False, False, False]
    assert results[1].details["p_value_adjusted"] == pytest.approx(0.04 * 4 / 3)
    assert results[0].details["correction"] == "benjamini-hochberg over 4 tests"
    assert "p_value_adjusted" not in results[4].details


# -- the store shell on the embedded engine -----------------------------------------------------------


@pytest.fixture
def store(ch, database) -> AnalysisStore:
    create_schema(ch, database)
    return AnalysisStore(ch, database)


def test_read_calls_filters_the_window_segment_and_captured_text(ch, database, store) -> None:
    rows = []
    for i in range(60):
        at = NOW - minutes(i * 2 + 1)  # 30 calls in the last hour, 30 in the hour before
        rows.append(
            call_row(
                at,
                i,
                model="a" if i % 2 else "b",
                prompt=f"q{i}" if i % 3 else "",
                DurationNs=int(2e9),
                StatusCode="Error" if i % 10 == 0 else "Ok",
            )
        )
    insert_calls(ch, database, rows)
    window, reference = windows("1h", "1h", end=NOW)
    cur = store.read_calls(window, ["SpanId", "LatencySeconds", "IsError"], segment_by=["model"])
    assert len(cur) == 30 and set(cur["RequestModel"]) == {"a", "b"}
    assert cur["LatencySeconds"].tolist() == [2.0] * 30 and cur["IsError"].sum() == 3
    only_a = store.read_calls(window, ["PromptText"], segment={"model": "a"}, require_text=["PromptText"])
    assert len(only_a) == 10 and (only_a["PromptText"] != "").all()
    capped = store.read_calls(reference, ["SpanId"], segment_by=["model"], limit_per_segment=4)
    assert capped.groupby("RequestModel").size().to_dict() == {"a": 4, "b": 4}
    again = store.read_calls(reference, ["SpanId"], segment_by=["model"], limit_per_segment=4)
    assert sorted(again["SpanId"]) == sorted(capped["SpanId"])  # a deterministic sample


def test_read_calls_refuses_unknown_columns_and_segments(store) -> None:
    window, _ = windows("1h", "1h", end=NOW)
    with pytest.raises(ValueError, match="unknown llm_calls column 'Secret; DROP'"):
        store.read_calls(window, ["Secret; DROP"])
    with pytest.raises(AnalyzerInputError, match="unknown segment key 'colour'"):
        store.read_calls(window, segment={"colour": "red"})


def test_results_and_alerts_round_trip(ch, database, store) -> None:
    result = AnalysisResult(
        **_fields({"model": "gpt"}),
        metric="mmd2",
        value=np.float64(0.12),
        p_value=0.002,
        threshold=0.05,
        alert=True,
        details={"n": np.int64(500), "per_side": np.array([1.0, 2.0])},
        summary="drifted",
    )
    quiet = AnalysisResult(**_fields({"model": "other"}), metric="mmd2", value=0.0, p_value=0.6, threshold=0.05)
    assert store.write_results([result, quiet], run_id="run1") == 2
    assert store.write_alerts(alerts_from([result, quiet]), run_id="run1") == 1
    rows = ch.query(
        "SELECT Analyzer, Segment, Metric, Value, PValue, Alert, Status, Details, WindowEnd, ReferenceStart "
        "FROM {db:Identifier}.analysis_results ORDER BY Value DESC",
        parameters={"db": database},
    ).result_rows
    assert [r[:7] for r in rows] == [
        ("t", {"model": "gpt"}, "mmd2", 0.12, 0.002, True, "ok"),
        ("t", {"model": "other"}, "mmd2", 0.0, 0.6, False, "ok"),
    ]
    assert json.loads(rows[0][7]) == {"n": 500, "per_side": [1.0, 2.0], "summary": "drifted"}
    assert rows[0][8].replace(tzinfo=timezone.utc) == NOW
    assert rows[0][9].replace(tzinfo=timezone.utc) == NOW - timedelta(days=7, hours=1)
    alerts = ch.query("SELECT Title, Message, Severity, RunId FROM {db:Identifier}.alerts", parameters={"db": database})
    assert alerts.result_rows == [("t: mmd2 (model=gpt)", "drifted", "warning", "run1")]


def test_embeddings_cache_round_trip(store) -> None:
    vectors = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    hashes = ["a" * 32, "b" * 32, "c" * 32]
    assert store.put_embeddings("mini", hashes, vectors) == 3
    found = store.get_embeddings("mini", ["a" * 32, "c" * 32, "d" * 32])
    assert set(found) == {"a" * 32, "c" * 32}
    np.testing.assert_array_equal(np.asarray(found["c" * 32], dtype=np.float32), vectors[2])
    assert store.get_embeddings("other-model", hashes) == {}


# -- running ------------------------------------------------------------------------------------------

VERSION = "test-1"
DEFAULTS = {"alpha": 0.05}


def failing_analyzer(store, window, reference, options):
    raise RuntimeError("boom inside the analyzer")


def option_checking_analyzer(store, window, reference, options):
    resolve_options(DEFAULTS, options)
    return [
        AnalysisResult(
            **result_fields(analyzer="checked", version=VERSION, window=window, reference=reference, segment={}),
            metric="m",
            value=1.0,
            p_value=0.01,
            threshold=0.05,
            alert=True,
        )
    ]


@pytest.fixture
def test_analyzers(monkeypatch):
    monkeypatch.setitem(registry.ANALYZERS, "boom", "tests.analyzers.framework.test_framework:failing_analyzer")
    monkeypatch.setitem(
        registry.ANALYZERS, "checked", "tests.analyzers.framework.test_framework:option_checking_analyzer"
    )
    monkeypatch.setattr(registry, "names", lambda: ["boom", "checked"])


def test_run_analyzer_records_a_failure_as_an_error_row(ch, database, store, test_analyzers) -> None:
    window, reference = windows("1h", "7d", end=NOW)
    (row,) = run_analyzer("boom", store, window, reference, {})
    assert row.status == ERROR and row.details["error"] == "RuntimeError: boom inside the analyzer"
    stored = ch.query(
        "SELECT Analyzer, AnalyzerVersion, Status FROM {db:Identifier}.analysis_results", parameters={"db": database}
    ).result_rows
    assert stored == [("boom", "test-1", "error")]


def test_run_analyzer_lets_bad_input_through_and_writes_nothing(ch, database, store, test_analyzers) -> None:
    window, reference = windows("1h", "7d", end=NOW)
    with pytest.raises(AnalyzerInputError, match="alpha must be between 0 and 1"):
        run_analyzer("checked", store, window, reference, {"alpha": 2})
    with pytest.raises(AnalyzerInputError, match="unknown analyzer 'nope'; choose from"):
        run_analyzer("nope", store, window, reference, {})
    count = ch.query("SELECT count() FROM {db:Identifier}.analysis_results", parameters={"db": database})
    assert count.result_rows == [(0,)]


def test_run_all_runs_every_analyzer_and_writes_alerts(ch, database, store, test_analyzers) -> None:
    results = run_all(ch, database, "1h", "7d", end=NOW)
    assert [(r.analyzer, r.status) for r in results] == [("boom", "error"), ("checked", "ok")]
    alerts = ch.query("SELECT Analyzer, WindowEnd FROM {db:Identifier}.alerts", parameters={"db": database})
    assert [(a, w.replace(tzinfo=timezone.utc)) for a, w in alerts.result_rows] == [("checked", NOW)]
    with pytest.raises(ValueError, match="both as durations or both as Window"):
        run_all(ch, database, "1h", windows("1h", "7d")[1])
