"""Types every analyzer shares: time windows, result rows, alerts, segments and options.

An analyzer is a function ``analyze(store, window, reference, options) -> list[AnalysisResult]``
(registered in :mod:`llmpulse.analyzers.registry`). It reads with the store, computes with pure
functions, and returns results; :func:`llmpulse.analyzers.store.run_analyzer` writes them and their
alerts. A minimal analyzer::

    from llmpulse.analyzers.base import (
        AnalysisResult,
        Window,
        adjust_for_multiple_testing,
        iter_segments,
        not_enough_data,
        progress,
        resolve_options,
        result_fields,
    )

    NAME, VERSION = "answer_length", "1"
    DEFAULTS = {"alpha": 0.05, "segment_by": ["service", "model"], "min_samples": 30}


    def analyze(store, window: Window, reference: Window, options: dict) -> list[AnalysisResult]:
        opts = resolve_options(DEFAULTS, options)
        current = store.read_calls(window, columns=["ResponseText"], segment_by=opts["segment_by"])
        past = store.read_calls(reference, columns=["ResponseText"], segment_by=opts["segment_by"])
        results = []
        for segment, cur, ref in progress(iter_segments(current, past, opts["segment_by"]), desc=NAME):
            base = dict(analyzer=NAME, version=VERSION, window=window, reference=reference, segment=segment)
            if min(len(cur), len(ref)) < opts["min_samples"]:
                results.append(
                    not_enough_data(
                        **base, metric="length", n_current=len(cur), n_reference=len(ref), minimum=opts["min_samples"]
                    )
                )
                continue
            p = some_pure_test(cur["ResponseText"].str.len(), ref["ResponseText"].str.len())
            results.append(
                AnalysisResult(
                    **result_fields(**base),
                    metric="length",
                    value=...,
                    p_value=p,
                    threshold=opts["alpha"],
                    alert=p < opts["alpha"],
                )
            )
        adjust_for_multiple_testing(results, opts["alpha"])  # across segments
        return results

Heavy libraries (numpy, pandas, scipy, tqdm) are imported inside functions so that importing this
module (from the CLI's verb registration) stays cheap.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

OK = "ok"
NOT_ENOUGH_DATA = "not_enough_data"
ERROR = "error"
STATUSES = (OK, NOT_ENOUGH_DATA, ERROR)
SEVERITIES = ("info", "warning", "critical")

# Segment keys users name (``--segment-by model,prompt_version``) and the llm_calls columns behind them.
SEGMENT_COLUMNS: dict[str, str] = {
    "service": "ServiceName",
    "provider": "Provider",
    "operation": "Operation",
    "model": "RequestModel",
    "response_model": "ResponseModel",
    "model_version": "ModelVersion",
    "base_model": "BaseModel",
    "quantization": "Quantization",
    "prompt_template": "PromptTemplate",
    "prompt_version": "PromptVersion",
}


class AnalyzerInputError(ValueError):
    """Bad user input for an analyzer run (name, option, duration, segment key).

    It propagates to the caller (the CLI exits 2 with its message); any other exception raised inside
    an analyzer is recorded as an "error" result row instead.
    """


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1h"``, ``"7d"`` (units s, m, h, d, w) as a timedelta; ValueError says what is accepted."""
    match = _DURATION.match(text or "") if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise AnalyzerInputError(
            f"bad duration {text!r}: use a positive whole number and a unit s, m, h, d or w, e.g. 30m, 1h, 7d"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC; naive values are refused (an instant must never depend on the host's zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"times must be timezone-aware, got {value!r}")
    return value.astimezone(timezone.utc)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with an offset or ``Z`` (e.g. ``2025-06-01T12:00:00Z``), in UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AnalyzerInputError(f"bad time {text!r}: use ISO 8601 with a zone, e.g. 2025-06-01T12:00:00Z") from None
    if value.tzinfo is None:
        raise AnalyzerInputError(f"bad time {text!r}: give a zone, e.g. 2025-06-01T12:00:00Z or +02:00")
    return utc(value)


@dataclass(frozen=True)
class Window:
    """A half-open time interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"a window must end after it starts, got {self.start.isoformat()} .. {self.end.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S}..{self.end:%Y-%m-%d %H:%M:%S} UTC"


def windows(
    current: str | timedelta, reference: str | timedelta, *, end: datetime | None = None
) -> tuple[Window, Window]:
    """The current window (``current`` long, ending at ``end``, default now) and the reference just before it.

    ``windows("1h", "7d")`` gives the last hour and the seven days before that hour.
    """
    cur = parse_duration(current) if isinstance(current, str) else current
    ref = parse_duration(reference) if isinstance(reference, str) else reference
    stop = utc(end) if end is not None else datetime.now(timezone.utc)
    window = Window(stop - cur, stop)
    return window, Window(window.start - ref, window.start)


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


# ---------------------------------------------------------------------------------------------------
# Options and segments
# ---------------------------------------------------------------------------------------------------


def resolve_options(defaults: Mapping[str, Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The analyzer's defaults overridden by the options it knows; values coerced to the default's type.

    Unknown keys are ignored, because ``analyze all`` hands one option set to every analyzer.
    ``segment_by`` accepts a list or a comma-separated string and is checked against SEGMENT_COLUMNS.
    """
    resolved = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults or value is None:
            continue
        resolved[key] = _coerce(key, value, defaults[key])
    if "segment_by" in resolved:
        resolved["segment_by"] = parse_segment_by(resolved["segment_by"])
    if "alpha" in resolved and not 0 < float(resolved["alpha"]) < 1:
        raise AnalyzerInputError(f"alpha must be between 0 and 1, got {resolved['alpha']!r}")
    return resolved


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise AnalyzerInputError(f"option {key}: expected {type(default).__name__}, got {value!r}") from None
    return value


def parse_segment_by(value: str | Sequence[str]) -> list[str]:
    """``"model,prompt_version"`` or a list, checked against the known segment keys (``[]`` = all traffic)."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in SEGMENT_COLUMNS]
    if unknown:
        raise AnalyzerInputError(
            f"unknown segment key(s) {', '.join(unknown)}; choose from {', '.join(SEGMENT_COLUMNS)}"
        )
    return list(dict.fromkeys(names))


def iter_segments(current: Any, reference: Any, segment_by: Sequence[str]) -> Iterator[tuple[dict[str, str], Any, Any]]:
    """(segment, current rows, reference rows) for every segment seen in either window, sorted.

    Both frames must carry the SEGMENT_COLUMNS of ``segment_by`` (``store.read_calls`` adds them).
    A segment missing from one window yields an empty frame for it, so analyzers can report it.
    """
    columns = [SEGMENT_COLUMNS[k] for k in segment_by]
    if not columns:
        yield {}, current, reference
        return
    keys = set()
    for frame in (current, reference):
        if len(frame):
            keys.update(tuple(str(v) for v in row) for row in frame[columns].itertuples(index=False, name=None))
    for key in sorted(keys):
        segment = dict(zip(segment_by, key, strict=True))
        yield segment, _select(current, columns, key), _select(reference, columns, key)


def _select(frame: Any, columns: list[str], key: tuple[str, ...]) -> Any:
    if not len(frame):
        return frame
    mask = None
    for column, value in zip(columns, key, strict=True):
        part = frame[column].astype(str) == value
        mask = part if mask is None else mask & part
    return frame[mask]


def progress(items: Iterable[Any], *, desc: str, total: int | None = None) -> Iterable[Any]:
    """A tqdm progress bar on stderr for long loops; silent when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------
# Multiple testing
# ---------------------------------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (scipy.stats.false_discovery_control); controls the false discovery rate.

    Used across the segments (and prompt/response sides) of one analyzer run: with k segments tested at
    alpha each, a plain per-test cut-off would raise a false alarm in about k * alpha of runs.
    """
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(p) for p in false_discovery_control([float(p) for p in p_values], method="bh")]


def adjust_for_multiple_testing(
    results: Sequence[AnalysisResult], alpha: float, *, also: Callable[[AnalysisResult], bool] | None = None
) -> None:
    """Replace the alert flag of tested results by a BH decision at ``alpha`` (in place).

    Each result keeps its raw ``p_value``; ``details["p_value_adjusted"]`` records the BH value and
    ``details["correction"]`` the method. Results without a p-value (not tested) are left alone.
    ``also`` adds a condition (e.g. a practical margin) that must hold as well for an alert.
    """
    tested = [r for r in results if r.status == OK and r.p_value is not None]
    adjusted = benjamini_hochberg([r.p_value for r in tested])  # type: ignore[misc]
    for result, p_adj in zip(tested, adjusted, strict=True):
        result.details["p_value_adjusted"] = p_adj
        result.details["correction"] = f"benjamini-hochberg over {len(tested)} tests"
        result.alert = p_adj < alpha and (also is None or bool(also(result)))
