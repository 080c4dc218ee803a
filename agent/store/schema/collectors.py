"""DDL of the tables the collectors fill (GPU samples and processes, serving-engine metrics) and the
GPU-cost views that join GPU samples with ``llm_calls``.

Column names are the keys of the rows ``llmpulse.collectors.gpu`` and ``llmpulse.collectors.serving``
produce, so ``rows_to_batch(table, rows)`` inserts them unchanged. A reading NVML or the engine cannot
give is NULL, never 0.

The cost views are *parameterized* views: a caller names the window (epoch milliseconds, what Grafana's
``$__from``/``$__to`` give) and the prices, and ClickHouse reads only that window::

    SELECT * FROM gpu_request_cost(start_ms=1735689600000, end_ms=1735693200000,
                                   price_per_kwh=0.15, price_per_gpu_hour=2.5)

The method and its limits are in the README section "GPU and serving-engine collectors".
"""

from __future__ import annotations

from .model import SchemaOptions, Table, View

GPU_SAMPLES_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Hostname LowCardinality(String),
    GpuIndex UInt16,
    GpuUuid LowCardinality(String),
    GpuName LowCardinality(String),
    DriverVersion LowCardinality(String),
    IsMig Bool,
    ParentGpuUuid LowCardinality(String),
    MigIndex Nullable(UInt16),
    GpuInstanceId Nullable(UInt32),
    ComputeInstanceId Nullable(UInt32),
    GpuUtilizationPercent Nullable(UInt8),
    MemoryUtilizationPercent Nullable(UInt8),
    MemoryUsedBytes Nullable(UInt64),
    MemoryFreeBytes Nullable(UInt64),
    MemoryTotalBytes Nullable(UInt64),
    PowerDrawWatts Nullable(Float64),
    PowerLimitWatts Nullable(Float64),
    EnergyMillijoules Nullable(UInt64) CODEC(ZSTD(1)),
    GpuTemperatureCelsius Nullable(Int16),
    MemoryTemperatureCelsius Nullable(Int16),
    SmClockMHz Nullable(UInt32),
    MemoryClockMHz Nullable(UInt32),
    ThrottleReasonsMask Nullable(UInt64),
    ThrottleReasons Array(LowCardinality(String)),
    PcieTxKBPerSecond Nullable(UInt32),
    PcieRxKBPerSecond Nullable(UInt32),
    EccCorrectedVolatile Nullable(UInt64),
    EccUncorrectedVolatile Nullable(UInt64),
    XidErrors Nullable(UInt32),
    LastXid Nullable(UInt64),
    FanSpeedPercent Nullable(UInt16),
    PerformanceState Nullable(UInt8),
    Unreadable Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Hostname, GpuUuid, Timestamp)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

GPU_PROCESSES_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Hostname LowCardinality(String),
    GpuIndex UInt16,
    GpuUuid LowCardinality(String),
    MigUuid LowCardinality(Nullable(String)),
    GpuInstanceId Nullable(UInt32),
    ComputeInstanceId Nullable(UInt32),
    Pid UInt32,
    ProcessName Nullable(String) CODEC(ZSTD(1)),
    ProcessType LowCardinality(String),
    UsedMemoryBytes Nullable(UInt64)
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Hostname, GpuUuid, Timestamp, Pid)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

# One row per scraped series. Histograms keep their finite buckets (cumulative, as exposed; the +Inf
# bucket equals HistogramCount), and the collector adds the increase since its previous scrape so that
# rates and quantiles over any window are plain sums (see serving_histogram_quantile).
SERVING_METRICS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    Hostname LowCardinality(String),
    Endpoint LowCardinality(String),
    Engine LowCardinality(String),
    ModelName LowCardinality(String),
    Metric LowCardinality(String),
    MetricName LowCardinality(String),
    MetricType LowCardinality(String),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Value Nullable(Float64),
    Increase Nullable(Float64),
    HistogramSum Nullable(Float64),
    HistogramCount Nullable(Float64),
    SumIncrease Nullable(Float64),
    CountIncrease Nullable(Float64),
    BucketBounds Array(Float64) CODEC(ZSTD(1)),
    BucketCounts Array(Float64) CODEC(ZSTD(1)),
    BucketIncreases Array(Float64) CODEC(ZSTD(1))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Metric, Hostname, Endpoint, Timestamp)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

# Which GPUs serve which model, when the serving-engine scraper cannot tell (no scraper, several engines
# on one host, a model pinned to some GPUs). GpuUuid '' means every GPU of the host. The latest row per
# (Hostname, Model, GpuUuid) wins; Enabled = false withdraws a mapping.
GPU_MODEL_MAP_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Hostname String,
    Model String,
    GpuUuid String DEFAULT '',
    Enabled Bool DEFAULT true,
    UpdatedAt DateTime64(3)
) ENGINE = {engine}
ORDER BY (Hostname, Model, GpuUuid)"""

# --- GPU cost per request --------------------------------------------------------------------------
# Longest gap between two samples of one GPU that still counts as an interval (the sidecar was down
# otherwise), and the time-bucket width used to join intervals with requests without a cross join.
MAX_INTERVAL_SECONDS = 60
_BUCKET_SECONDS = 10

# One row per physical GPU per sample interval (previous sample, this sample]: its length and energy.
# Energy is the counter delta (mJ -> J); when either counter reading is NULL or the counter went back
# (driver reload), the trapezoid of the two power readings times the interval, or one power reading
# times the interval when only one exists.
_GPU_INTERVALS_CTE = f"""gpu_intervals AS (
    SELECT Hostname, GpuUuid, GpuIndex, assumeNotNull(a0) AS a, b, b - a AS seconds,
        multiIf(e0 IS NOT NULL AND e1 IS NOT NULL AND e1 >= e0, (toFloat64(e1) - toFloat64(e0)) / 1000,
                p0 IS NOT NULL AND p1 IS NOT NULL, (p0 + p1) / 2 * (b - a),
                p1 IS NOT NULL, p1 * (b - a),
                p0 IS NOT NULL, p0 * (b - a),
                NULL) AS energy_j
    FROM (
        SELECT Hostname, GpuUuid, GpuIndex,
            toFloat64(Timestamp) AS b,
            lagInFrame(toNullable(toFloat64(Timestamp))) OVER w AS a0,
            EnergyMillijoules AS e1, lagInFrame(EnergyMillijoules) OVER w AS e0,
            PowerDrawWatts AS p1, lagInFrame(PowerDrawWatts) OVER w AS p0
        FROM "{{db}}"."gpu_samples"
        WHERE NOT IsMig
            AND Timestamp > fromUnixTimestamp64Milli({{{{start_ms:Int64}}}}) - INTERVAL {MAX_INTERVAL_SECONDS} SECOND
            AND Timestamp <= fromUnixTimestamp64Milli({{{{end_ms:Int64}}}})
        WINDOW w AS (PARTITION BY Hostname, GpuUuid ORDER BY Timestamp ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE a0 IS NOT NULL AND b > {{{{start_ms:Int64}}}} / 1000 AND b - a0 > 0 AND b - a0 <= {MAX_INTERVAL_SECONDS}
)"""

# The (Hostname, Model, GpuUuid) triples: the explicit map, plus, for hosts the map does not name, every
# model the host's serving engine reported (all GPUs of that host).
_SERVED_CTE = """explicit_map AS (
    SELECT Hostname, Model, GpuUuid FROM "{db}"."gpu_model_map" FINAL WHERE Enabled
),
served AS (
    SELECT Hostname, Model, GpuUuid FROM explicit_map
    UNION DISTINCT
    SELECT DISTINCT Hostname, ModelName AS Model, '' AS GpuUuid FROM "{db}"."serving_metrics"
    WHERE Timestamp > fromUnixTimestamp64Milli({{start_ms:Int64}}) - INTERVAL 1 HOUR
        AND Timestamp <= fromUnixTimestamp64Milli({{end_ms:Int64}})
        AND ModelName != '' AND Hostname NOT IN (SELECT Hostname FROM explicit_map)
)"""

# Each interval goes to the one time bucket its end falls in; each request to every bucket an interval
# it overlaps can end in, (s, e + the longest interval in the window], so every (interval, request) pair
# meets exactly once, and short buckets keep the candidate pairs few (no cross join).
_PER_INTERVAL_CTE = f"""interval_models AS (
    SELECT DISTINCT i.Hostname AS Hostname, i.GpuUuid AS GpuUuid, i.a AS a, i.b AS b, i.seconds AS seconds,
        i.energy_j AS energy_j, s.Model AS Model, intDiv(toInt64(floor(i.b)), {_BUCKET_SECONDS}) AS bucket
    FROM gpu_intervals AS i INNER JOIN served AS s ON i.Hostname = s.Hostname
    WHERE s.GpuUuid = '' OR s.GpuUuid = i.GpuUuid
),
requests AS (
    SELECT TraceId, SpanId, ServiceName, RequestModel AS Model, OutputTokens,
        toFloat64(Timestamp) AS s, s + DurationNs / 1e9 AS e,
        arrayJoin(range(intDiv(toInt64(floor(s)), {_BUCKET_SECONDS}),
                        intDiv(toInt64(ceil(e + (SELECT ifNull(max(seconds), 0) FROM gpu_intervals))),
                               {_BUCKET_SECONDS}) + 1)) AS bucket
    FROM "{{db}}"."llm_calls"
    WHERE Timestamp >= fromUnixTimestamp64Milli({{{{start_ms:Int64}}}}) - INTERVAL 1 DAY
        AND Timestamp <= fromUnixTimestamp64Milli({{{{end_ms:Int64}}}})
        AND RequestModel IN (SELECT Model FROM served)
),
pairs AS (
    SELECT im.Hostname AS Hostname, im.GpuUuid AS GpuUuid, im.a AS a, im.b AS b, im.seconds AS seconds,
        im.energy_j AS energy_j, r.TraceId AS TraceId, r.SpanId AS SpanId, r.ServiceName AS ServiceName,
        r.Model AS Model, r.OutputTokens AS OutputTokens,
        greatest(im.a, r.s) AS cs, least(im.b, r.e) AS ce, ce - cs AS overlap
    FROM interval_models AS im INNER JOIN requests AS r ON im.Model = r.Model AND im.bucket = r.bucket
    WHERE overlap > 0
),
per_interval AS (
    SELECT Hostname, GpuUuid, a, b, any(seconds) AS seconds, any(energy_j) AS energy_j,
        sum(overlap) AS request_seconds,
        arrayFold((acc, x) -> (acc.1 + greatest(0., x.2 - greatest(x.1, acc.2)), greatest(acc.2, x.2)),
                  arraySort(groupArray((cs, ce))), (0., -1.)).1 AS busy_seconds
    FROM pairs
    GROUP BY Hostname, GpuUuid, a, b
)"""

_COST_COLUMNS = """EnergyJoules / 3.6e6 * {{price_per_kwh:Float64}} AS EnergyCost,
    GpuSeconds / 3600 * {{price_per_gpu_hour:Float64}} AS GpuTimeCost"""

GPU_REQUEST_COST_DDL = f"""CREATE VIEW IF NOT EXISTS "{{db}}"."{{table}}" {{cluster}} AS
WITH {_GPU_INTERVALS_CTE},
{_SERVED_CTE},
{_PER_INTERVAL_CTE}
SELECT p.TraceId AS TraceId, p.SpanId AS SpanId, any(p.ServiceName) AS ServiceName, any(p.Model) AS Model,
    any(p.OutputTokens) AS OutputTokens,
    uniqExact(p.GpuUuid) AS Gpus,
    sum(i.busy_seconds * p.overlap / i.request_seconds) AS GpuSeconds,
    sum(i.energy_j * i.busy_seconds / i.seconds * p.overlap / i.request_seconds) AS EnergyJoules,
    countIf(i.energy_j IS NULL) AS IntervalsWithoutEnergy,
    {_COST_COLUMNS},
    EnergyCost + GpuTimeCost AS TotalCost,
    if(OutputTokens > 0, GpuSeconds * 1000 / OutputTokens, NULL) AS GpuSecondsPer1kOutputTokens,
    if(OutputTokens > 0, EnergyJoules * 1000 / OutputTokens, NULL) AS EnergyJoulesPer1kOutputTokens,
    if(OutputTokens > 0, EnergyCost * 1000 / OutputTokens, NULL) AS EnergyCostPer1kOutputTokens,
    if(OutputTokens > 0, TotalCost * 1000 / OutputTokens, NULL) AS TotalCostPer1kOutputTokens
FROM pairs AS p
INNER JOIN per_interval AS i ON p.Hostname = i.Hostname AND p.GpuUuid = i.GpuUuid AND p.b = i.b
GROUP BY TraceId, SpanId"""

# Per GPU over the window: total, attributed (some request in flight) and idle time and energy.
GPU_IDLE_COST_DDL = f"""CREATE VIEW IF NOT EXISTS "{{db}}"."{{table}}" {{cluster}} AS
WITH {_GPU_INTERVALS_CTE},
{_SERVED_CTE},
{_PER_INTERVAL_CTE}
SELECT Hostname, GpuUuid, any(GpuIndex) AS GpuIndex,
    sum(seconds) AS TotalSeconds,
    sum(energy_j) AS TotalEnergyJoules,
    sum(busy) AS AttributedSeconds,
    sum(energy_j * busy / seconds) AS AttributedEnergyJoules,
    sum(seconds - busy) AS IdleSeconds,
    sum(energy_j * (seconds - busy) / seconds) AS IdleEnergyJoules,
    IdleEnergyJoules / 3.6e6 * {{{{price_per_kwh:Float64}}}} AS IdleEnergyCost,
    IdleSeconds / 3600 * {{{{price_per_gpu_hour:Float64}}}} AS IdleGpuTimeCost
FROM (
    SELECT i.Hostname AS Hostname, i.GpuUuid AS GpuUuid, i.GpuIndex AS GpuIndex, i.seconds AS seconds,
        i.energy_j AS energy_j, ifNull(p.busy_seconds, 0.) AS busy
    FROM gpu_intervals AS i
    LEFT JOIN per_interval AS p ON i.Hostname = p.Hostname AND i.GpuUuid = p.GpuUuid AND i.b = p.b
)
GROUP BY Hostname, GpuUuid"""

# Quantile q of a histogram metric over a window, from the per-scrape bucket increases, interpolated
# linearly inside the bucket as Prometheus' histogram_quantile does (the upper bound of the highest
# finite bucket when the rank falls in +Inf). The rank is Nullable (a sum of Nullable increases), and
# ClickHouse 24.8 refuses a Nullable lambda result in arrayFirstIndex ("Unexpected type of filter
# column"): ifNull makes it a plain UInt8, NULL counting as false as later versions count it.
SERVING_HISTOGRAM_QUANTILE_DDL = """CREATE VIEW IF NOT EXISTS "{db}"."{table}" {cluster} AS
SELECT Hostname, Endpoint, Engine, ModelName, Metric, Labels, BucketBounds AS Bounds, Counts, Observations,
    {{q:Float64}} * Observations AS qrank,
    arrayFirstIndex(c -> ifNull(c >= qrank, 0), Counts) AS idx,
    if(Observations <= 0, NULL,
       if(idx = 0, Bounds[-1],
          if(idx = 1, 0., Bounds[idx - 1])
          + (Bounds[idx] - if(idx = 1, 0., Bounds[idx - 1]))
            * (qrank - if(idx = 1, 0., Counts[idx - 1]))
            / greatest(Counts[idx] - if(idx = 1, 0., Counts[idx - 1]), 1e-12))) AS Quantile
FROM (
    SELECT Hostname, Endpoint, Engine, ModelName, Metric, Labels, BucketBounds,
        sumForEach(BucketIncreases) AS Counts, sum(CountIncrease) AS Observations
    FROM "{db}"."serving_metrics"
    WHERE MetricType = 'histogram' AND length(BucketIncreases) > 0
        AND Timestamp > fromUnixTimestamp64Milli({{start_ms:Int64}})
        AND Timestamp <= fromUnixTimestamp64Milli({{end_ms:Int64}})
    GROUP BY Hostname, Endpoint, Engine, ModelName, Metric, Labels, BucketBounds
)"""


def _samples_ttl(options: SchemaOptions) -> int:
    return options.samples_ttl_days


GPU_SAMPLES = Table("gpu_samples", GPU_SAMPLES_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=_samples_ttl)
GPU_PROCESSES = Table("gpu_processes", GPU_PROCESSES_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=_samples_ttl)
SERVING_METRICS = Table(
    "serving_metrics", SERVING_METRICS_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=_samples_ttl
)
GPU_MODEL_MAP = Table("gpu_model_map", GPU_MODEL_MAP_DDL, engine="ReplacingMergeTree(UpdatedAt)", dedup_window=False)

# Plain (parameterized) views: they name their source tables in the DDL, so src/dst only document them.
GPU_REQUEST_COST = View("gpu_request_cost", GPU_REQUEST_COST_DDL, src="gpu_samples", dst="llm_calls")
GPU_IDLE_COST = View("gpu_idle_cost", GPU_IDLE_COST_DDL, src="gpu_samples", dst="llm_calls")
SERVING_HISTOGRAM_QUANTILE = View(
    "serving_histogram_quantile", SERVING_HISTOGRAM_QUANTILE_DDL, src="serving_metrics", dst="serving_metrics"
)

OBJECTS: tuple[Table | View, ...] = (
    GPU_SAMPLES,
    GPU_PROCESSES,
    SERVING_METRICS,
    GPU_MODEL_MAP,
    GPU_REQUEST_COST,
    GPU_IDLE_COST,
    SERVING_HISTOGRAM_QUANTILE,
)
