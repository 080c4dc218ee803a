"""The LLM overview dashboard: traffic, errors, latency, time to first token, throughput, tokens and cost."""

from __future__ import annotations

from llmpulse.dashboards.model import Dashboard, Panel, Row

from .thresholds import BLUE, ORANGE, RED, steps
from .traces import TRACE_LINK
from .variables import CALL_VARIABLES, CALLS_FILTER


def _stat(key: str, title: str, select: str, column: str, unit: str, description: str, **extra: object) -> Panel:
    return Panel(
        key=key,
        title=title,
        sql=f"SELECT {select} AS {column} FROM llm_calls WHERE {CALLS_FILTER}",
        visualization="stat",
        columns=(column,),
        unit=unit,
        description=description,
        width=4,
        height=4,
        **extra,  # type: ignore[arg-type]
    )


def _calls_series(key: str, title: str, select: str, columns: tuple[str, ...], unit: str, **extra: object) -> Panel:
    """A time series over llm_calls; ``select`` follows ``time`` (and may add a label column)."""
    group = "time, model" if "AS model" in select else "time"
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT $__timeInterval(Timestamp) AS time, {select} FROM llm_calls WHERE {CALLS_FILTER}"
            f" GROUP BY {group} ORDER BY time"
        ),
        visualization="timeseries",
        columns=("time", *columns),
        unit=unit,
        **extra,  # type: ignore[arg-type]
    )


def _by_parameter(key: str, title: str, expression: str, name: str) -> Panel:
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT {expression} AS {name}, count() AS calls, quantile(0.5)(DurationNs / 1e9) AS p50_s,"
            " quantile(0.95)(DurationNs / 1e9) AS p95_s, avg(CostUSD) AS mean_cost_usd,"
            " countIf(StatusCode = 'Error') / count() AS error_rate"
            f" FROM llm_calls WHERE {CALLS_FILTER} GROUP BY {name} ORDER BY {name}"
        ),
        visualization="table",
        columns=(name, "calls", "p50_s", "p95_s", "mean_cost_usd", "error_rate"),
        description=f"Latency, cost and errors of the calls grouped by {name.replace('_', ' ')}.",
        column_units=(("p50_s", "s"), ("p95_s", "s"), ("mean_cost_usd", "currencyUSD"), ("error_rate", "percentunit")),
        width=8,
    )


LLM_OVERVIEW = Dashboard(
    uid="llmpulse-llm-overview",
    title="llmpulse / LLM overview",
    description="Traffic, errors, latency, time to first token, throughput, tokens and cost of LLM calls.",
    data_times=("llm_calls.Timestamp",),
    variables=CALL_VARIABLES,
    items=(
        Row("Summary"),
        _stat(
            "requests_per_second",
            "Requests per second",
            "count() / (toUnixTimestamp($__toTime) - toUnixTimestamp($__fromTime))",
            "rps",
            "reqps",
            "LLM calls per second over the time range.",
        ),
        _stat(
            "error_rate",
            "Error rate",
            "countIf(StatusCode = 'Error') / nullIf(count(), 0)",
            "error_rate",
            "percentunit",
            "Share of calls whose span status is Error.",
            thresholds=steps((0.01, ORANGE), (0.05, RED)),
        ),
        _stat(
            "latency_p95",
            "p95 latency",
            "quantile(0.95)(DurationNs / 1e9)",
            "p95",
            "s",
            "95th percentile of call duration.",
            thresholds=steps((5, ORANGE), (10, RED)),
        ),
        _stat(
            "ttft_p50",
            "Median time to first token",
            "quantile(0.5)(TimeToFirstTokenSeconds)",
            "ttft_p50",
            "s",
            "Median time to the first streamed token (streamed calls only).",
            thresholds=steps((1, ORANGE), (3, RED)),
        ),
        _stat(
            "cost_total",
            "Cost",
            "sum(CostUSD)",
            "cost_usd",
            "currencyUSD",
            "Sum of the calls' cost at list prices (model_prices).",
            decimals=4,
            thresholds=steps(base=BLUE),
        ),
        _stat(
            "tokens_total",
            "Tokens",
            "sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0))",
            "tokens",
            "short",
            "Input plus output tokens.",
            thresholds=steps(base=BLUE),
        ),
        Row("Traffic and latency"),
        _calls_series(
            "requests_by_model",
            "Requests per second by model",
            "RequestModel AS model, count() / $__interval_s AS rps",
            ("model", "rps"),
            "reqps",
            description="Calls per second in each interval, one series per model.",
        ),
        _calls_series(
            "error_rate_by_model",
            "Error rate by model",
            "RequestModel AS model, countIf(StatusCode = 'Error') / count() AS error_rate",
            ("model", "error_rate"),
            "percentunit",
            thresholds=steps((0.05, RED)),
            description="Share of failed calls in each interval; the red line is the error-rate alert default.",
            min=0,
        ),
        _calls_series(
            "latency_quantiles",
            "Latency p50 / p95 / p99",
            "quantile(0.5)(DurationNs / 1e9) AS p50, quantile(0.95)(DurationNs / 1e9) AS p95,"
            " quantile(0.99)(DurationNs / 1e9) AS p99",
            ("p50", "p95", "p99"),
            "s",
            description="Call duration quantiles in each interval.",
        ),
        _calls_series(
            "ttft_quantiles",
            "Time to first token p50 / p95",
            "quantile(0.5)(TimeToFirstTokenSeconds) AS p50, quantile(0.95)(TimeToFirstTokenSeconds) AS p95",
            ("p50", "p95"),
            "s",
            description="Time to the first streamed token; intervals without streamed calls are empty.",
        ),
        _calls_series(
            "output_tokens_per_second",
            "Output tokens per second (median per call)",
            "RequestModel AS model, quantile(0.5)(OutputTokensPerSecond) AS tokens_per_s",
            ("model", "tokens_per_s"),
            "suffix: tok/s",
            description="Decode speed: output tokens over the time after the first token, median of the calls.",
        ),
        Row("Tokens and cost"),
        _calls_series(
            "tokens_by_model",
            "Tokens by model",
            "RequestModel AS model, sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0)) AS tokens",
            ("model", "tokens"),
            "short",
            stacked=True,
            description="Input plus output tokens per interval, stacked by model.",
        ),
        _calls_series(
            "cost_by_model",
            "Cost by model",
            "RequestModel AS model, sum(CostUSD) AS cost_usd",
            ("model", "cost_usd"),
            "currencyUSD",
            stacked=True,
            description="Cost per interval at list prices, stacked by model.",
        ),
        Panel(
            key="usage_by_model",
            title="Tokens and cost by model",
            sql=(
                "SELECT RequestModel AS model, count() AS calls, sum(ifNull(InputTokens, 0)) AS input_tokens,"
                " sum(ifNull(OutputTokens, 0)) AS output_tokens, sum(CostUSD) AS cost_usd,"
                " sum(CostUSD) / count() * 1000 AS cost_per_1k_calls"
                f" FROM llm_calls WHERE {CALLS_FILTER} GROUP BY model ORDER BY calls DESC"
            ),
            visualization="table",
            columns=("model", "calls", "input_tokens", "output_tokens", "cost_usd", "cost_per_1k_calls"),
            description="Totals over the time range.",
            column_units=(("cost_usd", "currencyUSD"), ("cost_per_1k_calls", "currencyUSD")),
            width=24,
            height=7,
        ),
        Row("By request parameters and model variant"),
        _by_parameter(
            "by_temperature",
            "By temperature",
            "if(Temperature IS NULL, 'unset', toString(Temperature))",
            "temperature",
        ),
        _by_parameter(
            "by_max_tokens",
            "By max_tokens",
            "if(MaxTokens IS NULL, 'unset', toString(MaxTokens))",
            "max_tokens",
        ),
        Panel(
            key="by_model_variant",
            title="By model variant (version, quantization)",
            sql=(
                "SELECT RequestModel AS model, if(ModelVersion = '', '-', ModelVersion) AS version,"
                " if(Quantization = '', '-', Quantization) AS quantization, count() AS calls,"
                " quantile(0.5)(DurationNs / 1e9) AS p50_s, quantile(0.95)(DurationNs / 1e9) AS p95_s,"
                " quantile(0.5)(OutputTokensPerSecond) AS tokens_per_s, avg(CostUSD) AS mean_cost_usd"
                f" FROM llm_calls WHERE {CALLS_FILTER} GROUP BY model, version, quantization ORDER BY calls DESC"
            ),
            visualization="table",
            columns=("model", "version", "quantization", "calls", "p50_s", "p95_s", "tokens_per_s", "mean_cost_usd"),
            description="Model version and quantization from @observe(model_version=..., quantization=...).",
            column_units=(("p50_s", "s"), ("p95_s", "s"), ("mean_cost_usd", "currencyUSD")),
            width=8,
        ),
        Row("Slowest and failing calls"),
        Panel(
            key="slowest_calls",
            title="Slowest calls",
            sql=(
                "SELECT Timestamp AS time, ServiceName AS service, RequestModel AS model, SpanName AS operation,"
                " DurationNs / 1e9 AS duration_s, TimeToFirstTokenSeconds AS ttft_s, OutputTokens AS output_tokens,"
                f" CostUSD AS cost_usd, TraceId AS trace_id FROM llm_calls WHERE {CALLS_FILTER}"
                " ORDER BY DurationNs DESC LIMIT 20"
            ),
            visualization="table",
            columns=("time", "service", "model", "duration_s", "trace_id"),
            description="The 20 slowest calls; the trace id opens the trace.",
            column_units=(("duration_s", "s"), ("ttft_s", "s"), ("cost_usd", "currencyUSD")),
            links=(TRACE_LINK,),
            width=12,
            height=9,
        ),
        Panel(
            key="failing_calls",
            title="Failing calls by error type",
            sql=(
                "SELECT if(ErrorType = '', 'unknown', ErrorType) AS error_type, RequestModel AS model,"
                " ServiceName AS service, count() AS failures, max(Timestamp) AS last_seen,"
                " argMax(StatusMessage, Timestamp) AS message, argMax(TraceId, Timestamp) AS trace_id"
                f" FROM llm_calls WHERE {CALLS_FILTER} AND StatusCode = 'Error'"
                " GROUP BY error_type, model, service ORDER BY failures DESC LIMIT 20"
            ),
            visualization="table",
            columns=("error_type", "model", "failures", "last_seen", "trace_id"),
            description="Errors grouped by type and model, with the latest message and trace.",
            links=(TRACE_LINK,),
            width=12,
            height=9,
        ),
    ),
)
