"""The GPU dashboard: utilization, memory, power, temperature, throttling, energy and GPU cost per request."""

from __future__ import annotations

from functools import partial

from llmpulse.dashboards.model import Dashboard, Panel, Row, Variable

from .series import labelled_series
from .thresholds import ORANGE, RED, steps
from .variables import IN_HOST, IN_SERVICE, MODEL, SERVICE, one_of

IN_COST_MODEL = one_of("Model", "model")
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


_gpu_series = partial(labelled_series, table="gpu_samples", where=GPU_FILTER, label="gpu", label_sql=GPU_LABEL)


GPU = Dashboard(
    uid="llmpulse-gpu",
    title="llmpulse / GPU",
    description="GPU utilization, memory, power, temperature, throttling, and energy and GPU cost per request.",
    data_times=("gpu_samples.Timestamp",),
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
            thresholds=steps((0.9, ORANGE), (0.95, RED)),
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
            thresholds=steps((80, ORANGE), (85, RED)),
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
            thresholds=steps((0.5, RED)),
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
