"""Serving-engine scraper: a vLLM or TGI Prometheus ``/metrics`` page into ``serving_metrics`` rows.

Two halves: ``parse_exposition(text, engine)`` is pure (prometheus-client's parser, then a map from each
engine's metric names to one vocabulary, ``Metric``, so one Grafana query serves both engines and every
vLLM release); ``ServingScraper`` does the I/O (``fetch``, injectable) and keeps the previous scrape so
each row also carries its increase since then (counters and histogram buckets; a counter that went
back means the engine restarted, and the increase is then the new value, as Prometheus' ``increase``
assumes). The sidecar loop calls::

    scraper = ServingScraper("http://localhost:8000/metrics")
    rows = scraper.collect(datetime.now(timezone.utc))  # {"serving_metrics": [...]}; never raises
    scraper.scrape_errors  # failed scrapes so far, for the sidecar's /metrics
"""

from __future__ import annotations

import logging
import math
import socket
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "ENGINES",
    "SERVING_COLUMNS",
    "ServingParseError",
    "ServingScraper",
    "detect_engine",
    "parse_exposition",
]

DEFAULT_INTERVAL_SECONDS = 5.0
MAX_BODY_BYTES = 16 * 1024 * 1024
ENGINES = ("auto", "vllm", "tgi")

log = logging.getLogger("llmpulse.collectors.serving")

SERVING_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "Hostname",
    "Endpoint",
    "Engine",
    "ModelName",
    "Metric",
    "MetricName",
    "MetricType",
    "Labels",
    "Value",
    "Increase",
    "HistogramSum",
    "HistogramCount",
    "SumIncrease",
    "CountIncrease",
    "BucketBounds",
    "BucketCounts",
    "BucketIncreases",
)

# Engine metric family (as prometheus-client names it: counters without "_total") -> our Metric.
VLLM_METRICS: dict[str, str] = {
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
    "vllm:num_requests_swapped": "requests_swapped",
    "vllm:kv_cache_usage_perc": "kv_cache_usage_ratio",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage_ratio",
    "vllm:prompt_tokens": "prompt_tokens",
    "vllm:generation_tokens": "generation_tokens",
    "vllm:num_preemptions": "preemptions",
    "vllm:request_success": "requests_finished",
    "vllm:prefix_cache_queries": "prefix_cache_queries",
    "vllm:prefix_cache_hits": "prefix_cache_hits",
    "vllm:gpu_prefix_cache_queries": "prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits": "prefix_cache_hits",
    "vllm:time_to_first_token_seconds": "ttft_seconds",
    "vllm:inter_token_latency_seconds": "inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds": "inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds": "request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds": "request_latency_seconds",
    "vllm:request_queue_time_seconds": "queue_time_seconds",
    "vllm:request_prefill_time_seconds": "prefill_time_seconds",
    "vllm:request_decode_time_seconds": "decode_time_seconds",
    "vllm:request_inference_time_seconds": "inference_time_seconds",
    "vllm:request_prompt_tokens": "request_prompt_tokens",
    "vllm:request_generation_tokens": "request_generation_tokens",
}
# Deprecated vLLM names, read only when the page lacks their replacement (both appear during a transition).
VLLM_DEPRECATED: dict[str, str] = {
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:time_per_output_token_seconds": "vllm:inter_token_latency_seconds",
    "vllm:gpu_prefix_cache_queries": "vllm:prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits": "vllm:prefix_cache_hits",
}
# TGI has no KV-cache gauge, no token counters and no TTFT histogram; its per-token latency is each
# request's mean (vLLM's request_time_per_output_token_seconds), not vLLM's per-token inter-token latency.
TGI_METRICS: dict[str, str] = {
    "tgi_queue_size": "requests_waiting",
    "tgi_batch_current_size": "requests_running",
    "tgi_batch_current_max_tokens": "batch_max_tokens",
    "tgi_request_count": "requests",
    "tgi_request_success": "requests_succeeded",
    "tgi_request_failure": "requests_failed",
    "tgi_request_duration": "request_latency_seconds",
    "tgi_request_queue_duration": "queue_time_seconds",
    "tgi_request_inference_duration": "inference_time_seconds",
    "tgi_request_validation_duration": "validation_time_seconds",
    "tgi_request_mean_time_per_token_duration": "request_time_per_output_token_seconds",
    "tgi_request_input_length": "request_prompt_tokens",
    "tgi_request_generated_tokens": "request_generation_tokens",
    "tgi_batch_inference_duration": "batch_inference_seconds",
    "tgi_batch_forward_duration": "batch_forward_seconds",
}
_MAPS = {"vllm": VLLM_METRICS, "tgi": TGI_METRICS}
_MODEL_LABEL = "model_name"


class ServingParseError(ValueError):
    """The text is not a Prometheus exposition of a vLLM or TGI server."""


# -- pure parsing -------------------------------------------------------------------------------------


def detect_engine(family_names: Iterable[str]) -> str | None:
    names = list(family_names)
    if any(name.startswith("vllm:") for name in names):
        return "vllm"
    if any(name.startswith("tgi_") for name in names):
        return "tgi"
    return None


def parse_exposition(text: str, engine: str = "auto") -> list[dict[str, Any]]:
    """The useful series of one ``/metrics`` page as partial ``serving_metrics`` rows.

    Each row has Engine, ModelName, Metric, MetricName, MetricType, Labels, Value, HistogramSum,
    HistogramCount, BucketBounds and BucketCounts (finite buckets, cumulative; the +Inf bucket is
    HistogramCount); the scraper adds the time, host, endpoint and increases. Raises
    ``ServingParseError`` for text prometheus-client cannot parse or that holds no vLLM/TGI metric.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    from prometheus_client.parser import text_string_to_metric_families  # sidecar extra; loaded when used

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as err:
        raise ServingParseError(f"not a Prometheus text exposition: {err}") from err
    found = detect_engine(f.name for f in families)
    if engine == "auto":
        if found is None:
            raise ServingParseError("no vLLM (vllm:*) or TGI (tgi_*) metrics on the page")
        engine = found
    names = _MAPS[engine]
    present = {f.name for f in families}
    rows: list[dict[str, Any]] = []
    for family in families:
        metric = names.get(family.name)
        if metric is None or VLLM_DEPRECATED.get(family.name) in present:
            continue
        if family.type == "histogram":
            rows.extend(_histogram_rows(engine, metric, family))
        elif family.type == "summary":
            rows.extend(_summary_rows(engine, metric, family))
        else:
            rows.extend(_value_rows(engine, metric, family))
    if not rows:
        looks_like = f" (the page looks like {found})" if found and found != engine else ""
        raise ServingParseError(f"no {engine} metrics on the page{looks_like}")
    return rows


def _row(engine: str, metric: str, family: Any, kind: str, labels: dict[str, str]) -> dict[str, Any]:
    labels = dict(labels)
    model = labels.pop(_MODEL_LABEL, "")
    return {
        "Engine": engine,
        "ModelName": model,
        "Metric": metric,
        "MetricName": family.name,
        "MetricType": kind,
        "Labels": labels,
        "Value": None,
        "HistogramSum": None,
        "HistogramCount": None,
        "BucketBounds": [],
        "BucketCounts": [],
    }


def _value_rows(engine: str, metric: str, family: Any) -> list[dict[str, Any]]:
    kind = "counter" if family.type == "counter" else "gauge"
    rows = []
    for sample in family.samples:
        if sample.name.endswith("_created"):
            continue
        row = _row(engine, metric, family, kind, sample.labels)
        row["Value"] = float(sample.value)
        rows.append(row)
    return rows


def _series_key(labels: dict[str, str], drop: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _histogram_rows(engine: str, metric: str, family: Any) -> list[dict[str, Any]]:
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in family.samples:
        key = _series_key(sample.labels, "le")
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None, "inf": None})
        suffix = sample.name[len(family.name) :]
        if suffix == "_bucket":
            bound = float(sample.labels["le"])
            if math.isinf(bound):
                entry["inf"] = float(sample.value)
            else:
                entry["buckets"].append((bound, float(sample.value)))
        elif suffix == "_sum":
            entry["sum"] = float(sample.value)
        elif suffix == "_count":
            entry["count"] = float(sample.value)
    rows = []
    for key, entry in series.items():
        row = _row(engine, metric, family, "histogram", dict(key))
        buckets = sorted(entry["buckets"])
        row["BucketBounds"] = [b for b, _ in buckets]
        row["BucketCounts"] = [c for _, c in buckets]
        row["HistogramSum"] = entry["sum"]
        row["HistogramCount"] = entry["count"] if entry["count"] is not None else entry["inf"]
        rows.append(row)
    return rows


def _summary_rows(engine: str, metric: str, family: Any) -> list[dict[str, Any]]:
    """Summaries keep sum and count (means and rates); their client-side quantiles are not stored."""
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in family.samples:
        key = _series_key(sample.labels, "quantile")
        entry = series.setdefault(key, {})
        suffix = sample.name[len(family.name) :]
        if suffix in ("_sum", "_count"):
            entry[suffix] = float(sample.value)
    rows = []
    for key, entry in series.items():
        row = _row(engine, metric, family, "summary", dict(key))
        row["HistogramSum"], row["HistogramCount"] = entry.get("_sum"), entry.get("_count")
        rows.append(row)
    return rows


# -- increases since the previous scrape (pure) --------------------------------------------------------


def _increase(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None:
        return None
    return current - previous if current >= previous else current  # went back: the engine restarted


def add_increases(
    rows: list[dict[str, Any]], previous: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Fill Increase / SumIncrease / CountIncrease / BucketIncreases in place; returns the new state.

    Gauges get no increase. A series seen for the first time gets NULL (and no bucket increases): there
    is nothing to subtract. Histogram buckets reset together with their count.
    """
    state: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["MetricName"], row["ModelName"], tuple(sorted(row["Labels"].items())))
        before = previous.get(key)
        row["Increase"] = row["SumIncrease"] = row["CountIncrease"] = None
        row["BucketIncreases"] = []
        if row["MetricType"] == "counter":
            row["Increase"] = _increase(row["Value"], before and before["Value"])
        elif row["MetricType"] in ("histogram", "summary") and before is not None:
            _histogram_increase(row, before)
        state[key] = row
    return state


def _histogram_increase(row: dict[str, Any], before: dict[str, Any]) -> None:
    counts, old = row["BucketCounts"], before["BucketCounts"]
    restarted = (
        row["HistogramCount"] is not None
        and before["HistogramCount"] is not None
        and row["HistogramCount"] < before["HistogramCount"]
    ) or any(c < o for c, o in zip(counts, old, strict=False))
    if restarted:
        row["CountIncrease"], row["SumIncrease"] = row["HistogramCount"], row["HistogramSum"]
        row["BucketIncreases"] = list(counts)
        return
    row["CountIncrease"] = _increase(row["HistogramCount"], before["HistogramCount"])
    row["SumIncrease"] = _increase(row["HistogramSum"], before["HistogramSum"])
    if row["BucketBounds"] == before["BucketBounds"]:
        row["BucketIncreases"] = [c - o for c, o in zip(counts, old, strict=True)]


# -- I/O ----------------------------------------------------------------------------------------------


def fetch_text(url: str, timeout: float) -> str:
    """GET the page as Prometheus text (not OpenMetrics), refusing bodies over ``MAX_BODY_BYTES``."""
    request = urllib.request.Request(url, headers={"Accept": "text/plain; version=0.0.4"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ServingParseError(f"/metrics body larger than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8", "replace")


class ServingScraper:
    """Scrapes one serving engine's ``/metrics``. Not thread-safe: one loop calls ``collect``."""

    TABLES = ("serving_metrics",)

    def __init__(
        self,
        url: str,
        *,
        engine: str = "auto",
        timeout: float = 5.0,
        fetch: Callable[[str, float], str] | None = None,
        hostname: str | None = None,
        model_name: str | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"serving engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"serving metrics URL must start with http:// or https://, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"serving scrape timeout must be > 0 seconds, got {timeout!r}")
        try:
            import prometheus_client  # noqa: F401 - fail at configuration time, not on every tick
        except ImportError as err:
            raise ValueError("the serving scraper needs prometheus-client: pip install 'llmpulse[sidecar]'") from err
        self.url = url
        self.engine = engine
        self.timeout = timeout
        self.hostname = hostname or socket.gethostname()
        self.model_name = model_name or ""  # for engines whose page names no model (TGI)
        self.scrape_errors = 0
        self.last_error: str | None = None
        self.last_scrape_seconds: float | None = None
        self._fetch = fetch or fetch_text
        self._previous: dict[tuple[Any, ...], dict[str, Any]] = {}

    @property
    def failed_ticks(self) -> int:
        """Scrapes that failed (``scrape_errors``): the page could not be fetched or read."""
        return self.scrape_errors

    def close(self) -> None:
        """Nothing to release: each scrape opens and closes its own connection."""

    def collect(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """``{"serving_metrics": rows}`` for one scrape at ``now``; no rows (and a logged error) on failure."""
        started = time.perf_counter()
        try:
            text = self._fetch(self.url, self.timeout)
        except Exception as err:
            return self._failed(f"cannot scrape {self.url}: {type(err).__name__}: {err}")
        try:
            parsed = parse_exposition(text, self.engine)
        except ServingParseError as err:
            return self._failed(f"cannot read {self.url}: {err}")
        self._previous = add_increases(parsed, self._previous)
        rows = [self._complete(row, now) for row in parsed]
        if self.last_error is not None:
            log.warning("serving metrics from %s are back", self.url)
            self.last_error = None
        self.last_scrape_seconds = time.perf_counter() - started
        return {"serving_metrics": rows}

    def _complete(self, row: dict[str, Any], now: datetime) -> dict[str, Any]:
        row = {**row, "Timestamp": now, "Hostname": self.hostname, "Endpoint": self.url}
        if not row["ModelName"]:
            row["ModelName"] = self.model_name
        return {column: row[column] for column in SERVING_COLUMNS}

    def _failed(self, message: str) -> dict[str, list[dict[str, Any]]]:
        self.scrape_errors += 1
        if message != self.last_error:  # log a new kind of failure once, not every tick
            log.warning("%s (no serving metrics this tick)", message)
        else:
            log.debug("%s", message)
        self.last_error = message
        return {"serving_metrics": []}
