"""The Serving engine dashboard: vLLM / TGI queue, KV cache, engine latencies and token throughput."""

from __future__ import annotations

from llmpulse.dashboards.model import Dashboard, Panel, Row, Variable

from .series import labelled_series
from .thresholds import ORANGE, RED, steps
from .variables import IN_HOST, one_of

IN_MODEL_NAME = one_of("ModelName", "model")
SERVING_FILTER = f"$__timeFilter(Timestamp) AND {IN_HOST} AND {IN_MODEL_NAME}"
SERVING_MODEL = "if(ModelName = '', Endpoint, ModelName)"
SERVING_HOST = Variable(
    "host", "Host", sql="SELECT DISTINCT Hostname FROM serving_metrics WHERE $__timeFilter(Timestamp) ORDER BY Hostname"
)
SERVING_MODEL_VARIABLE = Variable(
    "model",
    "Model",
    sql=(
        "SELECT DISTINCT ModelName FROM serving_metrics WHERE $__timeFilter(Timestamp) AND ModelName != ''"
        " ORDER BY ModelName"
    ),
)
QUANTILE_METRICS = "('ttft_seconds', 'request_latency_seconds', 'queue_time_seconds', 'inter_token_latency_seconds')"


def _quantile_arm(q: str) -> str:
    return (
        f"SELECT {SERVING_MODEL} AS model, Metric AS metric, {q} AS q, Quantile, Observations"
        f" FROM serving_histogram_quantile(q={q}, start_ms=$__from, end_ms=$__to)"
        f" WHERE Metric IN {QUANTILE_METRICS} AND {IN_HOST}"
        f" AND {IN_MODEL_NAME}"
    )


def _serving_series(key: str, title: str, value: str, where: str, column: str, unit: str, **extra: object) -> Panel:
    """A series per model and metric of the scraped engine metrics matching ``where``."""
    series = f"concat({SERVING_MODEL}, ' ', Metric)"
    filters = f"{SERVING_FILTER} AND {where}"
    return labelled_series(
        key,
        title,
        value,
        column,
        unit,
        table="serving_metrics",
        where=filters,
        label="series",
        label_sql=series,
        **extra,
    )


SERVING = Dashboard(
    uid="llmpulse-serving",
    title="llmpulse / Serving engine",
    description="vLLM / TGI engine metrics scraped by the sidecar: queue, KV cache, engine latencies, tokens.",
    data_times=("serving_metrics.Timestamp",),
    variables=(SERVING_HOST, SERVING_MODEL_VARIABLE),
    items=(
        Row("Queue and cache"),
        _serving_series(
            "engine_queue",
            "Requests running and waiting",
            "avg(Value)",
            "Metric IN ('requests_running', 'requests_waiting')",
            "requests",
            "short",
            description="Requests in the engine's batch and in its queue, mean per interval.",
        ),
        _serving_series(
            "kv_cache_usage",
            "KV-cache usage",
            "max(Value)",
            "Metric = 'kv_cache_usage_ratio'",
            "usage",
            "percentunit",
            thresholds=steps((0.8, ORANGE), (0.95, RED)),
            min=0,
            max=1,
            description="Share of KV-cache blocks in use (vLLM), peak per interval.",
        ),
        Row("Engine latency"),
        _serving_series(
            "engine_latency_mean",
            "Engine TTFT, queue time and latency (mean)",
            "sum(SumIncrease) / nullIf(sum(CountIncrease), 0)",
            "Metric IN ('ttft_seconds', 'queue_time_seconds', 'request_latency_seconds')",
            "seconds",
            "s",
            description="Mean of each engine histogram per interval, from the increases between scrapes.",
        ),
        Panel(
            key="engine_latency_quantiles",
            title="Engine latency quantiles over the range",
            sql=(
                "SELECT model, metric, max(Observations) AS observations, maxIf(Quantile, q = 0.5) AS p50,"
                " maxIf(Quantile, q = 0.95) AS p95, maxIf(Quantile, q = 0.99) AS p99 FROM ("
                f"{_quantile_arm('0.5')} UNION ALL {_quantile_arm('0.95')} UNION ALL {_quantile_arm('0.99')}"
                ") GROUP BY model, metric ORDER BY model, metric"
            ),
            visualization="table",
            columns=("model", "metric", "observations", "p50", "p95", "p99"),
            description="Histogram quantiles (serving_histogram_quantile view, Prometheus-style interpolation).",
            column_units=(("p50", "s"), ("p95", "s"), ("p99", "s")),
        ),
        Row("Throughput"),
        _serving_series(
            "engine_tokens",
            "Engine token throughput",
            "sum(Increase) / $__interval_s",
            "Metric IN ('prompt_tokens', 'generation_tokens')",
            "tokens_per_s",
            "suffix: tok/s",
            description="Prompt and generation tokens per second (counter increases).",
        ),
        _serving_series(
            "engine_preemptions",
            "Preemptions",
            "sum(Increase)",
            "Metric = 'preemptions'",
            "preemptions",
            "short",
            description="Requests preempted for lack of KV cache, per interval.",
        ),
    ),
)
