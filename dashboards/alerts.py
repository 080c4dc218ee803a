"""Grafana alert rules as code, with every threshold in one :class:`AlertSettings` a user can override.

Each rule is a ClickHouse query in table format (string columns become alert labels, the numeric column
the value; ``docs/sources/alerting.md`` of the plugin), then a Reduce (last) and a Threshold expression,
rendered both for file provisioning (``provisioning/alerting/*.yaml``) and for the provisioning HTTP API
(``/api/v1/provisioning/alert-rules``). Alert queries may use only backend macros: Grafana evaluates
them without a browser, so ``$__conditionalAll`` and dashboard variables are not available there.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .contract import canonical_duration
from .grafana import DEFAULT_DATASOURCE_UID, PLUGIN_ID


def duration_seconds(text: str) -> int:
    """Whole seconds of a duration in the one grammar (``30s``, ``5m``, ``1.5h``, ``1w``: the agent's
    ``store.duration``); ValueError (never OverflowError) for anything else, or for a part of a second."""
    from .contract import duration_in_seconds

    shown = str(text)[:40]
    value = duration_in_seconds(str(text))  # ValueError: "bad duration ...: use a number and ms, s, ..."
    if not math.isfinite(value):
        raise ValueError(f"duration {shown!r} is too long")
    if value <= 0 or not float(value).is_integer():
        raise ValueError(f"bad duration {shown!r}: use a positive whole number of seconds or more, e.g. 30s, 5m, 1h")
    return int(value)


@dataclass(frozen=True)
class AlertSettings:
    """Every alerting default in one place; ``llmpulse dashboards export|push --alerts FILE`` overrides them."""

    folder: str = "llmpulse"
    folder_uid: str = "llmpulse"
    group: str = "llmpulse"
    interval: str = "1m"  # how often Grafana evaluates the group
    datasource_uid: str = DEFAULT_DATASOURCE_UID
    window: str = "10m"  # look-back of the error-rate, latency and GPU rules
    pending: str = "5m"  # how long a condition must hold before the alert fires
    analyzer_window: str = "2h"  # look-back of the analyzer and score rules (analyzers run every hour or so)
    min_calls: int = 20  # rate and latency rules ignore a service/model with fewer calls in the window
    error_rate: float = 0.05
    p95_latency_seconds: float = 10.0
    gpu_temperature_celsius: float = 85.0
    gpu_throttled_share: float = 0.5
    gpu_memory_ratio: float = 0.95
    hallucination_rate: float = 0.10
    injection_rate: float = 0.05
    labels: dict[str, str] = field(default_factory=lambda: {"source": "llmpulse"})
    disabled: tuple[str, ...] = ()  # rule keys to leave out, e.g. ["gpu_memory"]

    def __post_init__(self) -> None:
        for name in ("interval", "window", "pending", "analyzer_window"):
            # Grafana reads these as whole numbers of one unit: 1w becomes 7d, 1.5h becomes 90m.
            object.__setattr__(self, name, canonical_duration(getattr(self, name)))
            duration_seconds(getattr(self, name))
        if not isinstance(self.min_calls, int) or isinstance(self.min_calls, bool) or self.min_calls < 1:
            raise ValueError(f"alert setting min_calls: a whole number >= 1, got {self.min_calls!r}")
        for name in ("error_rate", "gpu_throttled_share", "gpu_memory_ratio", "hallucination_rate", "injection_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"alert setting {name}: a share between 0 and 1, got {value!r}")
        for name in ("p95_latency_seconds", "gpu_temperature_celsius"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"alert setting {name}: a positive number, got {value!r}")
        unknown = set(self.disabled) - set(RULE_KEYS)
        if unknown:
            raise ValueError(
                f"alert setting disabled: unknown rule(s) {sorted(unknown)}; rules: {', '.join(RULE_KEYS)}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AlertSettings:
        """Settings from a dict (keys as the field names); unknown keys are refused by name."""
        if not isinstance(data, Mapping):
            raise ValueError(f"alert settings must be a mapping of setting: value, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown alert setting(s) {unknown}; known: {', '.join(sorted(names))}")
        values = dict(data)
        if "disabled" in values:
            values["disabled"] = tuple(values["disabled"])
        if "labels" in values:
            values["labels"] = {str(k): str(v) for k, v in dict(values["labels"]).items()}
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path, **defaults: Any) -> AlertSettings:
        """Settings from a YAML or JSON file; ``defaults`` apply to the keys the file does not set."""
        file = Path(path)
        try:
            text = file.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read alert settings {file}: {exc.strerror or exc}") from None
        if file.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"alert settings {file} is not valid JSON: {exc}") from None
        else:
            import yaml

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"alert settings {file} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"alert settings {file} must hold a mapping of setting: value")
        return cls.from_mapping({**defaults, **data})


@dataclass(frozen=True)
class AlertRule:
    """One rule: a table-format query, reduced to its last value per label set, against a threshold."""

    key: str
    title: str
    sql: str
    threshold: float
    comparator: Literal["gt", "lt"]
    summary: str
    lookback: str
    pending: str
    severity: str = "warning"
    dashboard_uid: str = ""

    @property
    def uid(self) -> str:
        return f"llmpulse-{self.key.replace('_', '-')}"


RULE_KEYS = (
    "drift",
    "quality_regression",
    "hallucination_rate",
    "injection_rate",
    "error_rate",
    "p95_latency",
    "gpu_temperature",
    "gpu_throttling",
    "gpu_memory",
)
_THROTTLING = "['sw_power_cap', 'hw_slowdown', 'sw_thermal_slowdown', 'hw_thermal_slowdown', 'hw_power_brake_slowdown']"


def _analyzer_sql(analyzers: str) -> str:
    return (
        "SELECT Analyzer AS analyzer, Segment['service'] AS service, Segment['model'] AS model, count() AS alerts"
        f" FROM alerts WHERE $__timeFilter(Timestamp) AND Analyzer IN {analyzers}"
        " GROUP BY analyzer, service, model"
    )


def _score_rate_sql(scorer: str, min_calls: int) -> str:
    return (
        "SELECT ServiceName AS service, RequestModel AS model, countIf(Flagged) / count() AS rate"
        f" FROM call_scores FINAL WHERE $__timeFilter(Timestamp) AND Scorer = '{scorer}'"
        f" GROUP BY service, model HAVING count() >= {int(min_calls)}"
    )


def rules(settings: AlertSettings | None = None) -> list[AlertRule]:
    """The rules with the settings' thresholds, less the disabled ones."""
    s = settings or AlertSettings()
    gpu = "concat(Hostname, ' #', toString(GpuIndex))"
    all_rules = [
        AlertRule(
            "drift",
            "LLM input/output drift",
            _analyzer_sql("('drift')"),
            0,
            "gt",
            "The drift analyzer found a significant change of the prompt or response distribution of"
            " {{ $labels.model }} ({{ $labels.service }}).",
            s.analyzer_window,
            "0s",
            dashboard_uid="llmpulse-quality",
        ),
        AlertRule(
            "quality_regression",
            "LLM quality regression",
            _analyzer_sql("('quality', 'quality_eval')"),
            0,
            "gt",
            "Scores against the reference answers dropped significantly for {{ $labels.model }}.",
            s.analyzer_window,
            "0s",
            dashboard_uid="llmpulse-quality",
        ),
        AlertRule(
            "hallucination_rate",
            "Hallucination rate",
            _score_rate_sql("hallucination", s.min_calls),
            s.hallucination_rate,
            "gt",
            f"More than {s.hallucination_rate:.0%} of the scored calls of {{{{ $labels.model }}}} look hallucinated.",
            s.analyzer_window,
            "0s",
            dashboard_uid="llmpulse-quality",
        ),
        AlertRule(
            "injection_rate",
            "Prompt-injection rate",
            _score_rate_sql("injection", s.min_calls),
            s.injection_rate,
            "gt",
            f"More than {s.injection_rate:.0%} of the prompts to {{{{ $labels.model }}}} look like injection attempts.",
            s.analyzer_window,
            "0s",
            dashboard_uid="llmpulse-quality",
        ),
        AlertRule(
            "error_rate",
            "LLM error rate",
            "SELECT ServiceName AS service, RequestModel AS model, countIf(StatusCode = 'Error') / count() AS error_rate"
            " FROM llm_calls WHERE $__timeFilter(Timestamp)"
            f" GROUP BY service, model HAVING count() >= {int(s.min_calls)}",
            s.error_rate,
            "gt",
            f"More than {s.error_rate:.0%} of the calls to {{{{ $labels.model }}}} fail.",
            s.window,
            s.pending,
            severity="critical",
            dashboard_uid="llmpulse-llm-overview",
        ),
        AlertRule(
            "p95_latency",
            "LLM p95 latency",
            "SELECT ServiceName AS service, RequestModel AS model, quantile(0.95)(DurationNs / 1e9) AS p95_seconds"
            " FROM llm_calls WHERE $__timeFilter(Timestamp)"
            f" GROUP BY service, model HAVING count() >= {int(s.min_calls)}",
            s.p95_latency_seconds,
            "gt",
            f"p95 latency of {{{{ $labels.model }}}} is above {s.p95_latency_seconds:g} s.",
            s.window,
            s.pending,
            dashboard_uid="llmpulse-llm-overview",
        ),
        AlertRule(
            "gpu_temperature",
            "GPU temperature",
            f"SELECT {gpu} AS gpu, max(GpuTemperatureCelsius) AS temperature FROM gpu_samples"
            " WHERE $__timeFilter(Timestamp) AND GpuTemperatureCelsius IS NOT NULL GROUP BY gpu",
            s.gpu_temperature_celsius,
            "gt",
            f"{{{{ $labels.gpu }}}} is hotter than {s.gpu_temperature_celsius:g} °C.",
            s.window,
            s.pending,
            severity="critical",
            dashboard_uid="llmpulse-gpu",
        ),
        AlertRule(
            "gpu_throttling",
            "GPU throttling",
            f"SELECT {gpu} AS gpu, countIf(hasAny(ThrottleReasons, {_THROTTLING})) / count() AS throttled_share"
            " FROM gpu_samples WHERE $__timeFilter(Timestamp) GROUP BY gpu",
            s.gpu_throttled_share,
            "gt",
            f"{{{{ $labels.gpu }}}} slowed its clocks (power or thermal) in more than {s.gpu_throttled_share:.0%}"
            " of the samples.",
            s.window,
            s.pending,
            dashboard_uid="llmpulse-gpu",
        ),
        AlertRule(
            "gpu_memory",
            "GPU memory nearly full",
            f"SELECT {gpu} AS gpu, max(MemoryUsedBytes / MemoryTotalBytes) AS memory_used_ratio FROM gpu_samples"
            " WHERE $__timeFilter(Timestamp) AND MemoryTotalBytes > 0 GROUP BY gpu",
            s.gpu_memory_ratio,
            "gt",
            f"{{{{ $labels.gpu }}}} uses more than {s.gpu_memory_ratio:.0%} of its memory.",
            s.window,
            s.pending,
            dashboard_uid="llmpulse-gpu",
        ),
    ]
    return [rule for rule in all_rules if rule.key not in s.disabled]


def _data(rule: AlertRule, settings: AlertSettings) -> list[dict[str, Any]]:
    """Query A (ClickHouse, table format), B = reduce(A, last), C = threshold(B)."""
    return [
        {
            "refId": "A",
            "queryType": "table",
            "relativeTimeRange": {"from": duration_seconds(rule.lookback), "to": 0},
            "datasourceUid": settings.datasource_uid,
            "model": {
                "refId": "A",
                "datasource": {"type": PLUGIN_ID, "uid": settings.datasource_uid},
                "editorType": "sql",
                "queryType": "table",
                "format": 1,
                "rawSql": rule.sql,
                "intervalMs": 1000,
                "maxDataPoints": 43200,
            },
        },
        _expression("B", type="reduce", expression="A", reducer="last", settings={"mode": "dropNN"}),
        _expression(
            "C",
            type="threshold",
            expression="B",
            conditions=[{"evaluator": {"type": rule.comparator, "params": [rule.threshold]}}],
        ),
    ]


def _expression(ref_id: str, **model: Any) -> dict[str, Any]:
    """A server-side expression query (``__expr__``: reduce, threshold, ...) on the queries before it."""
    return {
        "refId": ref_id,
        "queryType": "",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": "__expr__",
        "model": {"refId": ref_id, "datasource": {"type": "__expr__", "uid": "__expr__"}, **model},
    }


def _common(rule: AlertRule, settings: AlertSettings) -> dict[str, Any]:
    annotations = {"summary": rule.summary, "description": f"llmpulse rule {rule.key}; query:\n{rule.sql}"}
    if rule.dashboard_uid:
        annotations["dashboardUid"] = rule.dashboard_uid
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": _data(rule, settings),
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.pending,
        "annotations": annotations,
        "labels": {**settings.labels, "severity": rule.severity, "rule": rule.key},
        "isPaused": False,
    }


def provisioning_file(settings: AlertSettings | None = None) -> dict[str, Any]:
    """The ``provisioning/alerting`` file: one rule group (``rules_types.go`` fields)."""
    s = settings or AlertSettings()
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": s.group,
                "folder": s.folder,
                "interval": s.interval,
                "rules": [_common(rule, s) for rule in rules(s)],
            }
        ],
    }


def api_rules(settings: AlertSettings | None = None) -> list[dict[str, Any]]:
    """Bodies for ``POST/PUT /api/v1/provisioning/alert-rules`` (ProvisionedAlertRule)."""
    s = settings or AlertSettings()
    return [{**_common(rule, s), "orgID": 1, "folderUID": s.folder_uid, "ruleGroup": s.group} for rule in rules(s)]
