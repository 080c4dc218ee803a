"""Result rows: one tested quantity per segment and window (``analysis_results``), and the alerts they raise."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .windows import Window

OK = "ok"
NOT_ENOUGH_DATA = "not_enough_data"
ERROR = "error"
STATUSES = (OK, NOT_ENOUGH_DATA, ERROR)
SEVERITIES = ("info", "warning", "critical")


@dataclass
class AnalysisResult:
    """One tested quantity for one segment in one window: a row of ``analysis_results``.

    ``value`` is the effect or statistic shown to people; ``p_value`` and ``threshold`` say how it was
    judged (``threshold`` is alpha for a test, or the cut-off for a score); ``alert`` is the verdict.
    ``details`` holds anything else (sample sizes, secondary tests) and is stored as JSON text.
    ``summary`` is a one-line human explanation, used as the alert message.
    """

    analyzer: str
    version: str
    window_start: datetime
    window_end: datetime
    reference_start: datetime | None
    reference_end: datetime | None
    segment: dict[str, str]
    metric: str
    value: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    alert: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    status: str = OK
    severity: str = "warning"
    summary: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.value = _finite_or_none(self.value)
        self.p_value = _finite_or_none(self.p_value)
        self.threshold = _finite_or_none(self.threshold)
        self.alert = bool(self.alert) and self.status == OK
        self.segment = {str(k): str(v) for k, v in self.segment.items()}


def _finite_or_none(value: float | None) -> float | None:
    """Store NaN/inf as NULL: JSON and dashboards cannot show them, and they are never a real measurement."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def result_fields(
    *, analyzer: str, version: str, window: Window, reference: Window | None, segment: Mapping[str, str]
) -> dict[str, Any]:
    """The identifying fields of an :class:`AnalysisResult` for a window pair and segment."""
    return {
        "analyzer": analyzer,
        "version": version,
        "window_start": window.start,
        "window_end": window.end,
        "reference_start": reference.start if reference else None,
        "reference_end": reference.end if reference else None,
        "segment": dict(segment),
    }


def not_enough_data(
    *,
    analyzer: str,
    version: str,
    window: Window,
    reference: Window | None,
    segment: Mapping[str, str],
    metric: str,
    n_current: int,
    n_reference: int | None = None,
    minimum: int,
) -> AnalysisResult:
    """The explicit "not tested" row: too few samples in a window to run the test honestly."""
    counts = f"{n_current} current" + (f", {n_reference} reference" if n_reference is not None else "")
    return AnalysisResult(
        **result_fields(analyzer=analyzer, version=version, window=window, reference=reference, segment=segment),
        metric=metric,
        status=NOT_ENOUGH_DATA,
        details={"n_current": n_current, "n_reference": n_reference, "minimum": minimum},
        summary=f"not enough data: {counts} (minimum {minimum} per window)",
    )


def error_result(
    *, analyzer: str, version: str, window: Window, reference: Window | None, error: BaseException
) -> AnalysisResult:
    """A row recording that an analyzer failed, so a failure is visible rather than silent."""
    text = f"{type(error).__name__}: {str(error)[:500]}"
    return AnalysisResult(
        **result_fields(analyzer=analyzer, version=version, window=window, reference=reference, segment={}),
        metric="error",
        status=ERROR,
        details={"error": text},
        summary=text,
    )


@dataclass
class Alert:
    """A row of ``alerts``: an alerting result with a title and message for people."""

    analyzer: str
    version: str
    severity: str
    title: str
    message: str
    window_start: datetime
    window_end: datetime
    segment: dict[str, str]
    metric: str
    value: float | None
    p_value: float | None
    threshold: float | None
    details: dict[str, Any]

    @classmethod
    def from_result(cls, result: AnalysisResult) -> Alert:
        where = ", ".join(f"{k}={v}" for k, v in sorted(result.segment.items())) or "all traffic"
        title = f"{result.analyzer}: {result.metric} ({where})"
        message = result.summary or _default_message(result)
        return cls(
            analyzer=result.analyzer,
            version=result.version,
            severity=result.severity,
            title=title,
            message=message,
            window_start=result.window_start,
            window_end=result.window_end,
            segment=dict(result.segment),
            metric=result.metric,
            value=result.value,
            p_value=result.p_value,
            threshold=result.threshold,
            details=dict(result.details),
        )


def _default_message(result: AnalysisResult) -> str:
    parts = [f"{result.metric} = {format_number(result.value)}"]
    if result.p_value is not None:
        parts.append(f"p = {format_number(result.p_value)}")
    if result.threshold is not None:
        parts.append(f"threshold {format_number(result.threshold)}")
    return ", ".join(parts)


def alerts_from(results: Iterable[AnalysisResult]) -> list[Alert]:
    return [Alert.from_result(r) for r in results if r.alert]


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3g}"
    return f"{value:.4g}"
