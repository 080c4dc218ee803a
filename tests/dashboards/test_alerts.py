"""Alert rules: settings in one place, Grafana's rule model, and the queries on the real schema."""

from __future__ import annotations

import pytest
from grafana_foundation_sdk.models.alerting import Rule
from llmpulse.dashboards.alerts import RULE_KEYS, AlertSettings, api_rules, provisioning_file, rules
from llmpulse.dashboards.macros import UNEXPANDED
from llmpulse.dashboards.store import run_sql

from .grafana_schema import schema_errors

# Fields the file-provisioning parser reads (grafana/grafana pkg/services/provisioning/alerting/rules_types.go,
# as listed in shared/reference/standards.md section 4.2).
GROUP_FIELDS = {"orgId", "name", "folder", "interval", "rules"}
RULE_FIELDS = {
    "uid", "title", "condition", "data", "dashboardUid", "panelId", "noDataState", "execErrState", "for",
    "keepFiringFor", "missing_series_evals_to_resolve", "annotations", "labels", "isPaused",
    "notification_settings", "record",
}  # fmt: skip
QUERY_FIELDS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}


def test_every_rule_conforms_to_the_grafana_rule_model():
    bodies = api_rules()
    assert [b["uid"] for b in bodies] == [f"llmpulse-{k.replace('_', '-')}" for k in RULE_KEYS]
    for body in bodies:
        assert schema_errors(Rule, body) == [], body["uid"]


def test_provisioning_file_uses_only_fields_grafana_reads():
    document = provisioning_file()
    assert document["apiVersion"] == 1
    (group,) = document["groups"]
    assert set(group) <= GROUP_FIELDS
    for rule in group["rules"]:
        assert set(rule) <= RULE_FIELDS, set(rule) - RULE_FIELDS
        assert rule["condition"] == "C"
        for query in rule["data"]:
            assert set(query) <= QUERY_FIELDS


def test_thresholds_and_windows_come_from_settings():
    settings = AlertSettings(
        error_rate=0.2, window="15m", pending="2m", gpu_temperature_celsius=90, disabled=("gpu_memory",)
    )
    by_key = {r.key: r for r in rules(settings)}
    assert "gpu_memory" not in by_key
    assert by_key["error_rate"].threshold == 0.2 and by_key["gpu_temperature"].threshold == 90
    body = next(b for b in api_rules(settings) if b["uid"] == "llmpulse-error-rate")
    assert body["for"] == "2m"
    assert body["data"][0]["relativeTimeRange"] == {"from": 900, "to": 0}
    assert body["data"][2]["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [0.2]}


def test_settings_load_from_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("error_rate: 0.1\nmin_calls: 5\nlabels: {team: llm}\n")
    settings = AlertSettings.load(tmp_path / "a.yaml", datasource_uid="ds-1")
    assert (settings.error_rate, settings.min_calls, settings.labels, settings.datasource_uid) == (
        0.1,
        5,
        {"team": "llm"},
        "ds-1",
    )
    (tmp_path / "b.json").write_text('{"p95_latency_seconds": 3}')
    assert AlertSettings.load(tmp_path / "b.json").p95_latency_seconds == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error_rat": 0.1}, "unknown alert setting(s) ['error_rat']"),
        ({"error_rate": 5}, "error_rate: a share between 0 and 1, got 5"),
        ({"window": "ten minutes"}, "bad duration 'ten minutes'"),
        ({"min_calls": 0}, "min_calls: a whole number >= 1"),
        ({"disabled": ["gpu_fan"]}, "unknown rule(s) ['gpu_fan']"),
        ({"p95_latency_seconds": "fast"}, "p95_latency_seconds: a positive number"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(data, message):
    with pytest.raises(ValueError) as info:
        AlertSettings.from_mapping(data)
    assert message in str(info.value)


def test_bad_settings_file_messages(tmp_path):
    with pytest.raises(ValueError, match="cannot read alert settings"):
        AlertSettings.load(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="is not valid JSON"):
        AlertSettings.load(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        AlertSettings.load(tmp_path / "list.yaml")


def _evaluate(ch, database, rule, time_range):
    """Grafana's pipeline on the store: rows -> (labels, value) -> threshold."""
    result = run_sql(ch, database, rule.sql, time_range, {}, raise_errors=True)
    firing = []
    for row in result.rows:
        labels = {c: v for c, v in zip(result.columns, row, strict=True) if isinstance(v, str)}
        value = next(v for v in reversed(row) if isinstance(v, (int, float)))
        if (value > rule.threshold) if rule.comparator == "gt" else (value < rule.threshold):
            firing.append((labels, value))
    return result, firing


def test_rule_queries_use_backend_macros_only():
    for rule in rules():
        assert "$__conditionalAll" not in rule.sql and "${" not in rule.sql
        leftover = UNEXPANDED.findall(rule.sql.replace("$__timeFilter", ""))
        assert not leftover, (rule.key, leftover)


def test_rules_run_on_the_store_and_fire_on_seeded_problems(ch, seeded, seeded_range):
    by_key = {r.key: r for r in rules(AlertSettings(min_calls=5))}
    for rule in by_key.values():
        run_sql(ch, seeded.database, rule.sql, seeded_range, {}, raise_errors=True)
    _, drift = _evaluate(ch, seeded.database, by_key["drift"], seeded_range)
    assert {labels["model"] for labels, _ in drift} >= {"gpt-4o-mini"}
    _, hot = _evaluate(ch, seeded.database, by_key["gpu_temperature"], seeded_range)
    assert hot == []  # the seeded GPUs peak at 83 °C
    _, slow = _evaluate(ch, seeded.database, by_key["p95_latency"], seeded_range)
    assert slow == []  # seeded calls are far below 10 s
    lowered = {r.key: r for r in rules(AlertSettings(min_calls=5, p95_latency_seconds=0.5, gpu_temperature_celsius=80))}
    _, slow = _evaluate(ch, seeded.database, lowered["p95_latency"], seeded_range)
    assert slow
    _, hot = _evaluate(ch, seeded.database, lowered["gpu_temperature"], seeded_range)
    assert {labels["gpu"] for labels, _ in hot} == {"gpu-host-1 #0", "gpu-host-1 #1"}
