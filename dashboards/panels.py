"""The llmpulse dashboards: every panel defined once, as SQL with the Grafana ClickHouse plugin's macros.

Five dashboards: LLM overview, Quality, GPU, Serving engine and Traces. Tables are named without a
database (the Grafana data source's ``defaultDatabase`` names it; the report qualifies them). Filters on
the ``service``, ``model`` and ``prompt_version`` variables use ``$__conditionalAll`` so "All" costs nothing.
No variable value reaches the SQL unescaped: each is percent-encoded by Grafana and decoded in SQL.
Every SQL here is run, expanded, on the real schema by ``tests/dashboards/test_panels_sql.py``.
"""

from __future__ import annotations

from .model import Dashboard, Link, Panel, Row, Threshold, Variable

TRACES_UID = "llmpulse-traces"
TRACE_LINK = Link(
    column="trace_id",
    title="Open trace",
    url=f"/d/{TRACES_UID}/?var-trace_id=${{__value.raw}}&${{__url_time_range}}",
)

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


def _steps(*steps: tuple[float, str], base: str = GREEN) -> tuple[Threshold, ...]:
    return (Threshold(None, base), *(Threshold(value, color) for value, color in steps))


# --- shared filters and variables --------------------------------------------------------------------
def selected(variable: str) -> str:
    """The values picked in a drop-down variable as an SQL array that no value can break out of.

    The plugin's own format pastes them unescaped (``'a','b'``), and Grafana's ``sqlstring`` leaves
    backslashes, which ClickHouse reads as escapes; ``percentencode`` leaves neither a quote nor a
    backslash (a multi-value arrives as ``{a,b}`` encoded). A value holding a comma or edge braces then
    matches nothing: the filter fails closed.
    """
    return f"splitByChar(',', trim(BOTH '{{}}' FROM decodeURLComponent('${{{variable}:percentencode}}')))"


def one_of(column: str, variable: str) -> str:
    """``column`` is one of the values picked in ``variable``; "All" costs nothing ($__conditionalAll)."""
    return f"$__conditionalAll(has({selected(variable)}, {column}), ${variable})"


IN_SERVICE = one_of("ServiceName", "service")
IN_MODEL = one_of("RequestModel", "model")
IN_PROMPT_VERSION = one_of("PromptVersion", "prompt_version")
IN_SEGMENT_SERVICE = one_of("Segment['service']", "service")
IN_SEGMENT_MODEL = one_of("Segment['model']", "model")
IN_SEGMENT_PROMPT_VERSION = one_of("Segment['prompt_version']", "prompt_version")
IN_HOST = one_of("Hostname", "host")
IN_MODEL_NAME = one_of("ModelName", "model")
IN_COST_MODEL = one_of("Model", "model")


CALLS_FILTER = f"$__timeFilter(Timestamp) AND {IN_SERVICE} AND {IN_MODEL} AND {IN_PROMPT_VERSION}"
SEGMENT_FILTER = f"{IN_SEGMENT_SERVICE} AND {IN_SEGMENT_MODEL} AND {IN_SEGMENT_PROMPT_VERSION}"
SEGMENT_LABEL = "arrayStringConcat(arrayMap((k, v) -> concat(k, '=', v), mapKeys(Segment), mapValues(Segment)), ' ')"

SERVICE = Variable(
    "service",
    "Service",
    sql="SELECT DISTINCT ServiceName FROM llm_calls WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
)
MODEL = Variable(
    "model",
    "Model",
    sql=(
        "SELECT DISTINCT RequestModel FROM llm_calls WHERE $__timeFilter(Timestamp)"
        f" AND {IN_SERVICE} ORDER BY RequestModel"
    ),
)
PROMPT_VERSION = Variable(
    "prompt_version",
    "Prompt version",
    sql=(
        "SELECT DISTINCT PromptVersion FROM llm_calls WHERE $__timeFilter(Timestamp) AND PromptVersion != ''"
        f" AND {IN_SERVICE} ORDER BY PromptVersion"
    ),
)
CALL_VARIABLES = (SERVICE, MODEL, PROMPT_VERSION)


# --- LLM overview ------------------------------------------------------------------------------------


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
            thresholds=_steps((0.01, ORANGE), (0.05, RED)),
        ),
        _stat(
            "latency_p95",
            "p95 latency",
            "quantile(0.95)(DurationNs / 1e9)",
            "p95",
            "s",
            "95th percentile of call duration.",
            thresholds=_steps((5, ORANGE), (10, RED)),
        ),
        _stat(
            "ttft_p50",
            "Median time to first token",
            "quantile(0.5)(TimeToFirstTokenSeconds)",
            "ttft_p50",
            "s",
            "Median time to the first streamed token (streamed calls only).",
            thresholds=_steps((1, ORANGE), (3, RED)),
        ),
        _stat(
            "cost_total",
            "Cost",
            "sum(CostUSD)",
            "cost_usd",
            "currencyUSD",
            "Sum of the calls' cost at list prices (model_prices).",
            decimals=4,
            thresholds=_steps(base=BLUE),
        ),
        _stat(
            "tokens_total",
            "Tokens",
            "sum(ifNull(InputTokens, 0) + ifNull(OutputTokens, 0))",
            "tokens",
            "short",
            "Input plus output tokens.",
            thresholds=_steps(base=BLUE),
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
            thresholds=_steps((0.05, RED)),
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


# --- Quality -----------------------------------------------------------------------------------------

SCORES_FILTER = f"$__timeFilter(Timestamp) AND {IN_SERVICE} AND {IN_MODEL} AND {IN_PROMPT_VERSION}"
SCORE_VERSION = (
    "multiIf(Version != '', Version, ModelVersion != '', concat('model ', ModelVersion),"
    " PromptVersion != '', concat('prompt ', PromptVersion), RequestModel)"
)
RATE_SCORERS = "('hallucination', 'injection')"


def _flag_rate(key: str, title: str, scorer: str, red: float) -> Panel:
    return Panel(
        key=key,
        title=title,
        sql=(
            "SELECT countIf(Flagged) / nullIf(count(), 0) AS flagged_rate FROM call_scores FINAL"
            f" WHERE {SCORES_FILTER} AND Scorer = '{scorer}'"
        ),
        visualization="stat",
        columns=("flagged_rate",),
        unit="percentunit",
        description=f"Share of scored calls the {scorer} scorer flagged over the time range.",
        thresholds=_steps((red / 2, ORANGE), (red, RED)),
        width=6,
        height=4,
    )


QUALITY = Dashboard(
    uid="llmpulse-quality",
    title="llmpulse / Quality",
    description="Drift tests, hallucination and prompt-injection rates, reference scores and human feedback.",
    variables=CALL_VARIABLES,
    items=(
        Row("Drift"),
        Panel(
            key="drift_p_values",
            title="Drift p-values",
            sql=(
                f"SELECT WindowEnd AS time, concat(Metric, ' ', {SEGMENT_LABEL}) AS series, min(PValue) AS p_value"
                " FROM analysis_results WHERE $__timeFilter(WindowEnd) AND Analyzer = 'drift' AND Status = 'ok'"
                f" AND PValue IS NOT NULL AND {SEGMENT_FILTER} GROUP BY time, series ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "series", "p_value"),
            description="p-value of each drift test per window end; below the red line (alpha 0.05) is drift.",
            thresholds=_steps((0.05, GREEN), base=RED),
            min=0,
            max=1,
            decimals=3,
        ),
        Panel(
            key="drift_magnitude",
            title="Drift magnitude",
            sql=(
                f"SELECT WindowEnd AS time, concat(Metric, ' ', {SEGMENT_LABEL}) AS series, max(Value) AS magnitude"
                " FROM analysis_results WHERE $__timeFilter(WindowEnd) AND Analyzer = 'drift' AND Status = 'ok'"
                f" AND Value IS NOT NULL AND {SEGMENT_FILTER} GROUP BY time, series ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "series", "magnitude"),
            description="Effect sizes of the drift tests (MMD², classifier AUC, centroid cosine distance).",
            decimals=3,
        ),
        Row("Alerts"),
        Panel(
            key="alerts_over_time",
            title="Analyzer alerts",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Analyzer AS analyzer, count() AS alerts FROM alerts"
                f" WHERE $__timeFilter(Timestamp) AND {SEGMENT_FILTER} GROUP BY time, analyzer ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "analyzer", "alerts"),
            description="Alerts raised by the analyzers per interval.",
            stacked=True,
            width=8,
        ),
        Panel(
            key="recent_alerts",
            title="Recent alerts",
            sql=(
                f"SELECT Timestamp AS time, Severity AS severity, Analyzer AS analyzer, Title AS title,"
                f" Message AS message, {SEGMENT_LABEL} AS segment, Value AS value, PValue AS p_value FROM alerts"
                f" WHERE $__timeFilter(Timestamp) AND {SEGMENT_FILTER} ORDER BY Timestamp DESC LIMIT 50"
            ),
            visualization="table",
            columns=("time", "severity", "analyzer", "title", "message"),
            description="The latest analyzer alerts with their test values.",
            width=16,
        ),
        Row("Hallucination and prompt injection"),
        _flag_rate("hallucination_rate", "Hallucination rate", "hallucination", 0.1),
        _flag_rate("injection_rate", "Prompt-injection rate", "injection", 0.05),
        Panel(
            key="flag_rates",
            title="Hallucination and prompt-injection rates",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Scorer AS scorer, countIf(Flagged) / count() AS flagged_rate"
                f" FROM call_scores FINAL WHERE {SCORES_FILTER} AND Scorer IN {RATE_SCORERS}"
                " GROUP BY time, scorer ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "scorer", "flagged_rate"),
            unit="percentunit",
            description="Share of calls flagged by the hallucination and prompt-injection scorers per interval.",
            min=0,
        ),
        Row("Reference scores and human feedback"),
        Panel(
            key="reference_scores_by_version",
            title="Reference score by version",
            sql=(
                f"SELECT {SCORE_VERSION} AS version, avg(Score) AS mean_score FROM call_scores FINAL"
                f" WHERE {SCORES_FILTER} AND Dataset != '' GROUP BY version ORDER BY version"
            ),
            visualization="barchart",
            columns=("version", "mean_score"),
            description="Mean score against the golden answers (reference_answers) per model/prompt version.",
            min=0,
            max=1,
            decimals=3,
        ),
        Panel(
            key="reference_metrics_by_version",
            title="Reference metrics by version",
            sql=(
                f"SELECT {SCORE_VERSION} AS version, Dataset AS dataset, metric, avg(Signals[metric]) AS mean,"
                " count() AS items FROM call_scores FINAL ARRAY JOIN mapKeys(Signals) AS metric"
                f" WHERE {SCORES_FILTER} AND Dataset != '' GROUP BY version, dataset, metric"
                " ORDER BY version, dataset, metric"
            ),
            visualization="table",
            columns=("version", "dataset", "metric", "mean", "items"),
            description="Every reference metric (ROUGE, BLEU, embedding similarity...) per version and dataset.",
        ),
        Panel(
            key="feedback_over_time",
            title="Human feedback score",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, Name AS feedback, avg(Score) AS mean_score FROM feedback"
                f" WHERE $__timeFilter(Timestamp) AND {IN_SERVICE}"
                " GROUP BY time, feedback ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "feedback", "mean_score"),
            description="Mean feedback score per interval, one series per feedback name.",
        ),
        Panel(
            key="feedback_summary",
            title="Human feedback",
            sql=(
                "SELECT Name AS feedback, count() AS records, avg(Score) AS mean_score,"
                " countIf(Score <= 0) / count() AS negative_share, argMax(Comment, Timestamp) AS latest_comment"
                " FROM feedback WHERE $__timeFilter(Timestamp)"
                f" AND {IN_SERVICE}"
                " GROUP BY feedback ORDER BY records DESC"
            ),
            visualization="table",
            columns=("feedback", "records", "mean_score", "negative_share"),
            description="Feedback records per name: count, mean score and share of scores at or below 0.",
            column_units=(("negative_share", "percentunit"),),
        ),
    ),
)


# --- GPU ---------------------------------------------------------------------------------------------

GPU_FILTER = f"$__timeFilter(Timestamp) AND {IN_HOST}"
GPU_LABEL = (
    "concat(Hostname, ' #', toString(GpuIndex), if(IsMig, concat(' MIG ', ifNull(toString(MigIndex), '?')), ''))"
)
THROTTLING = "['sw_power_cap', 'hw_slowdown', 'sw_thermal_slowdown', 'hw_thermal_slowdown', 'hw_power_brake_slowdown']"


def typed_number(variable: str) -> str:
    """A text-box number as SQL that holds whatever is typed: percent-encoded by Grafana (no quote, no
    backslash can reach the SQL), decoded, then read as a Float64 (0 when it is not a number)."""
    return f"toFloat64OrZero(decodeURLComponent('${{{variable}:percentencode}}'))"


COST_VIEW_ARGS = (
    f"start_ms=$__from, end_ms=$__to, price_per_kwh={typed_number('price_per_kwh')},"
    f" price_per_gpu_hour={typed_number('price_per_gpu_hour')}"
)
GPU_HOST = Variable(
    "host", "Host", sql="SELECT DISTINCT Hostname FROM gpu_samples WHERE $__timeFilter(Timestamp) ORDER BY Hostname"
)
PRICE_PER_KWH = Variable(
    "price_per_kwh", "Price per kWh", kind="textbox", default="0.15", description="Electricity price, currency/kWh"
)
PRICE_PER_GPU_HOUR = Variable(
    "price_per_gpu_hour", "Price per GPU hour", kind="textbox", default="2.5", description="GPU rental, currency/hour"
)


def _gpu_series(key: str, title: str, value: str, column: str, unit: str, **extra: object) -> Panel:
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT $__timeInterval(Timestamp) AS time, {GPU_LABEL} AS gpu, {value} AS {column} FROM gpu_samples"
            f" WHERE {GPU_FILTER} GROUP BY time, gpu ORDER BY time"
        ),
        visualization="timeseries",
        columns=("time", "gpu", column),
        unit=unit,
        **extra,  # type: ignore[arg-type]
    )


GPU = Dashboard(
    uid="llmpulse-gpu",
    title="llmpulse / GPU",
    description="GPU utilization, memory, power, temperature, throttling, and energy and GPU cost per request.",
    variables=(GPU_HOST, SERVICE, MODEL, PRICE_PER_KWH, PRICE_PER_GPU_HOUR),
    items=(
        Row("Per GPU"),
        _gpu_series(
            "gpu_utilization",
            "GPU utilization",
            "avg(GpuUtilizationPercent)",
            "utilization",
            "percent",
            min=0,
            max=100,
            description="Share of time a kernel ran (NVML), mean per interval.",
        ),
        _gpu_series(
            "gpu_memory",
            "GPU memory used",
            "max(MemoryUsedBytes)",
            "memory_used",
            "bytes",
            description="Framebuffer memory in use, peak per interval.",
        ),
        _gpu_series(
            "gpu_memory_ratio",
            "GPU memory used (share)",
            "max(MemoryUsedBytes / MemoryTotalBytes)",
            "memory_used_ratio",
            "percentunit",
            thresholds=_steps((0.9, ORANGE), (0.95, RED)),
            min=0,
            max=1,
            description="Used over total memory; the red line is the memory alert default.",
        ),
        _gpu_series(
            "gpu_power",
            "Power draw",
            "avg(PowerDrawWatts)",
            "power",
            "watt",
            description="Board power draw, mean per interval.",
        ),
        _gpu_series(
            "gpu_temperature",
            "GPU temperature",
            "max(GpuTemperatureCelsius)",
            "temperature",
            "celsius",
            thresholds=_steps((80, ORANGE), (85, RED)),
            description="Core temperature, peak per interval; the red line is the temperature alert default.",
        ),
        _gpu_series(
            "gpu_throttling",
            "Throttled share of samples",
            f"countIf(hasAny(ThrottleReasons, {THROTTLING})) / count()",
            "throttled_share",
            "percentunit",
            min=0,
            max=1,
            thresholds=_steps((0.5, RED)),
            description="Samples with a power or thermal clock slowdown (idle and application clocks excluded).",
        ),
        Panel(
            key="gpu_throttle_reasons",
            title="Throttle reasons",
            sql=(
                f"SELECT {GPU_LABEL} AS gpu, reason, count() AS samples FROM gpu_samples"
                f" ARRAY JOIN ThrottleReasons AS reason WHERE {GPU_FILTER} GROUP BY gpu, reason ORDER BY samples DESC"
            ),
            visualization="table",
            columns=("gpu", "reason", "samples"),
            description="Which NVML clock-event reasons were set, in how many samples.",
        ),
        Row("Energy and GPU cost per request"),
        Panel(
            key="gpu_cost_by_model",
            title="Energy and GPU cost per request by model",
            sql=(
                "SELECT Model AS model, count() AS requests, avg(EnergyJoules) AS energy_j_per_request,"
                " avg(GpuSeconds) AS gpu_s_per_request, avg(TotalCost) AS gpu_cost_per_request,"
                " sum(TotalCost) / nullIf(sum(OutputTokens), 0) * 1000 AS gpu_cost_per_1k_output_tokens"
                f" FROM gpu_request_cost({COST_VIEW_ARGS})"
                f" WHERE {IN_SERVICE}"
                f" AND {IN_COST_MODEL} GROUP BY model ORDER BY requests DESC"
            ),
            visualization="table",
            columns=("model", "requests", "energy_j_per_request", "gpu_s_per_request", "gpu_cost_per_request"),
            description=(
                "GPU busy time and energy split over the requests in flight (gpu_request_cost view), priced"
                " with the price variables."
            ),
            column_units=(
                ("energy_j_per_request", "joule"),
                ("gpu_s_per_request", "s"),
                ("gpu_cost_per_request", "currencyUSD"),
                ("gpu_cost_per_1k_output_tokens", "currencyUSD"),
            ),
            width=14,
        ),
        Panel(
            key="gpu_energy_by_model",
            title="Energy per request",
            sql=(
                f"SELECT Model AS model, avg(EnergyJoules) AS energy_j FROM gpu_request_cost({COST_VIEW_ARGS})"
                f" WHERE {IN_SERVICE}"
                f" AND {IN_COST_MODEL} GROUP BY model ORDER BY model"
            ),
            visualization="barchart",
            columns=("model", "energy_j"),
            unit="joule",
            description="Mean GPU energy attributed to one request, by model.",
            width=10,
        ),
        Panel(
            key="gpu_idle_cost",
            title="Idle GPU time and energy",
            sql=(
                "SELECT concat(Hostname, ' #', toString(GpuIndex)) AS gpu, TotalSeconds AS total_s,"
                " AttributedSeconds AS busy_s, IdleSeconds AS idle_s, TotalEnergyJoules AS energy_j,"
                " IdleEnergyJoules AS idle_energy_j, IdleEnergyCost + IdleGpuTimeCost AS idle_cost"
                f" FROM gpu_idle_cost({COST_VIEW_ARGS}) WHERE {IN_HOST}"
                " ORDER BY gpu"
            ),
            visualization="table",
            columns=("gpu", "total_s", "busy_s", "idle_s", "idle_cost"),
            description="GPU time and energy with no request in flight: what the per-request cost leaves out.",
            column_units=(
                ("total_s", "s"),
                ("busy_s", "s"),
                ("idle_s", "s"),
                ("energy_j", "joule"),
                ("idle_energy_j", "joule"),
                ("idle_cost", "currencyUSD"),
            ),
            width=24,
            height=6,
        ),
    ),
)


# --- Serving engine ----------------------------------------------------------------------------------

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
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT $__timeInterval(Timestamp) AS time, concat({SERVING_MODEL}, ' ', Metric) AS series,"
            f" {value} AS {column} FROM serving_metrics WHERE {SERVING_FILTER} AND {where}"
            " GROUP BY time, series ORDER BY time"
        ),
        visualization="timeseries",
        columns=("time", "series", column),
        unit=unit,
        **extra,  # type: ignore[arg-type]
    )


SERVING = Dashboard(
    uid="llmpulse-serving",
    title="llmpulse / Serving engine",
    description="vLLM / TGI engine metrics scraped by the sidecar: queue, KV cache, engine latencies, tokens.",
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
            thresholds=_steps((0.8, ORANGE), (0.95, RED)),
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


# --- Traces ------------------------------------------------------------------------------------------

TRACE_SERVICE = Variable(
    "service",
    "Service",
    sql="SELECT DISTINCT ServiceName FROM otel_traces WHERE $__timeFilter(Timestamp) ORDER BY ServiceName",
)
TRACE_ID = Variable(
    "trace_id", "Trace ID", kind="textbox", description="Trace to show (click a trace id in a table to set it)"
)

# The plugin's own trace-id query (src/data/sqlGenerator.ts generateTraceIdQuery with the
# <table>_trace_id_ts lookup), with the OTel column names of otel_traces. The typed trace id reaches the
# SQL percent-encoded (nothing in it can end the string) and counts only as 32 lowercase hex digits.
TRACE_SQL = (
    "WITH decodeURLComponent('${trace_id:percentencode}') AS __gf_trace_input,"
    " if(match(__gf_trace_input, '^[0-9a-f]{32}$'), __gf_trace_input, '') AS __gf_trace_id,"
    " (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_start,"
    " (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_end"
    " SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName,"
    " SpanName AS operationName, multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,"
    " multiply(Duration, 0.000001) AS duration,"
    " arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,"
    " arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,"
    " if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode, SpanKind AS kind,"
    " StatusMessage AS statusMessage, ScopeName AS instrumentationLibraryName,"
    " ScopeVersion AS instrumentationLibraryVersion, TraceState AS traceState,"
    " arrayMap((name, timestamp, attributes) -> CAST(tuple(name, toString(toUnixTimestamp64Milli(timestamp)),"
    " arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes))),"
    " 'Tuple(name String, timestamp String, fields Array(Map(String, String)))'),"
    " Events.Name, Events.Timestamp, Events.Attributes) AS logs"
    " FROM otel_traces WHERE traceID = __gf_trace_id AND Timestamp >= __gf_trace_start"
    " AND Timestamp <= __gf_trace_end ORDER BY startTime ASC"
)

TRACES = Dashboard(
    uid=TRACES_UID,
    title="llmpulse / Traces",
    description="Spans in otel_traces: the slowest traces and the plugin's trace view of one trace.",
    variables=(TRACE_SERVICE, TRACE_ID),
    items=(
        Panel(
            key="slowest_traces",
            title="Slowest traces",
            sql=(
                "SELECT TraceId AS trace_id, min(Timestamp) AS start, any(ServiceName) AS service,"
                " argMin(SpanName, Timestamp) AS root_span, count() AS spans,"
                " (max(toUnixTimestamp64Nano(Timestamp) + Duration) - min(toUnixTimestamp64Nano(Timestamp))) / 1e9"
                " AS duration_s, countIf(StatusCode = 'Error') AS errors FROM otel_traces"
                f" WHERE $__timeFilter(Timestamp) AND {IN_SERVICE}"
                " AND TraceId != '' GROUP BY trace_id ORDER BY duration_s DESC LIMIT 50"
            ),
            visualization="table",
            columns=("trace_id", "start", "service", "root_span", "spans", "duration_s", "errors"),
            description="The 50 longest traces; click a trace id to show it below.",
            column_units=(("duration_s", "s"),),
            links=(TRACE_LINK,),
            width=14,
            height=9,
        ),
        Panel(
            key="spans_per_second",
            title="Spans per second by service",
            sql=(
                "SELECT $__timeInterval(Timestamp) AS time, ServiceName AS service, count() / $__interval_s AS spans"
                " FROM otel_traces WHERE $__timeFilter(Timestamp)"
                f" AND {IN_SERVICE} GROUP BY time, service ORDER BY time"
            ),
            visualization="timeseries",
            columns=("time", "service", "spans"),
            unit="short",
            description="Spans stored per second.",
            width=10,
            height=9,
        ),
        Panel(
            key="trace_view",
            title="Trace",
            sql=TRACE_SQL,
            visualization="traces",
            columns=(
                "traceID",
                "spanID",
                "parentSpanID",
                "serviceName",
                "operationName",
                "startTime",
                "duration",
                "tags",
                "serviceTags",
                "statusCode",
            ),
            description="The trace named by the trace_id variable, in Grafana's trace view.",
            width=24,
            height=14,
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (LLM_OVERVIEW, QUALITY, GPU, SERVING, TRACES)


def all_panels() -> list[tuple[Dashboard, Panel]]:
    return [(dashboard, panel) for dashboard in DASHBOARDS for panel in dashboard.panels]
