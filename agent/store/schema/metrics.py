"""The tables the sidecar's OTLP receiver writes besides ``otel_traces``: the OTel metrics tables.

They are the OpenTelemetry Collector ClickHouse exporter's metrics tables (collector-contrib
``exporter/clickhouseexporter/internal/sqltemplates/metrics_*_table.sql``, at the commits named below):
the same columns, types, codecs, indexes, keys and settings, with our placeholders, so a collector fleet
and our receiver share the tables and Grafana queries written for one work on the other. Gauge, sum,
histogram and summary are the "variant A" templates (``DateTime64(9)`` times); the exponential histogram
is the only template text we have for it, "variant B" (``DateTime`` times, second precision).

The columns are declared once here; the DDL renders them (with even white space) and the receiver's row
encoder lists them from ``METRIC_COLUMNS``.
"""

from __future__ import annotations

from .model import Column, Nested, Table, View, column_names, create_table

_ZSTD = "CODEC(ZSTD(1))"
_DELTA = "CODEC(Delta, ZSTD(1))"
_MAP = "Map(LowCardinality(String), String)"


def _head(*, time_type: str = "DateTime64(9)", name_type: str = "String") -> tuple[Column, ...]:
    """The columns every metrics table starts with: resource, scope, metric and point identity."""
    return (
        Column("ResourceAttributes", _MAP, _ZSTD),
        Column("ResourceSchemaUrl", "String", _ZSTD),
        Column("ScopeName", "String", _ZSTD),
        Column("ScopeVersion", "String", _ZSTD),
        Column("ScopeAttributes", _MAP, _ZSTD),
        Column("ScopeDroppedAttrCount", "UInt32", _ZSTD),
        Column("ScopeSchemaUrl", "String", _ZSTD),
        Column("ServiceName", "LowCardinality(String)", _ZSTD),
        Column("MetricName", name_type, _ZSTD),
        Column("MetricDescription", "String", _ZSTD),
        Column("MetricUnit", "String", _ZSTD),
        Column("Attributes", _MAP, _ZSTD),
        Column("StartTimeUnix", time_type, _DELTA),
        Column("TimeUnix", time_type, _DELTA),
    )


def _exemplars(time_type: str = "DateTime64(9)") -> Nested:
    fields = (
        Column("FilteredAttributes", _MAP),
        Column("TimeUnix", time_type),
        Column("Value", "Float64"),
        Column("SpanId", "String"),
        Column("TraceId", "String"),
    )
    return Nested("Exemplars", fields, _ZSTD)


_FLAGS = Column("Flags", "UInt32", _ZSTD)
_COUNT = Column("Count", "UInt64", _DELTA)
_SUM = Column("Sum", "Float64", _ZSTD)
_MIN_MAX_TEMPORALITY = (
    Column("Min", "Float64", _ZSTD),
    Column("Max", "Float64", _ZSTD),
    Column("AggregationTemporality", "Int32", _ZSTD),
)

GAUGE_COLUMNS = (*_head(), Column("Value", "Float64", _ZSTD), _FLAGS, _exemplars())
SUM_COLUMNS = (
    *_head(),
    Column("Value", "Float64", _ZSTD),
    _FLAGS,
    _exemplars(),
    Column("AggregationTemporality", "Int32", _ZSTD),
    Column("IsMonotonic", "Boolean", _DELTA),
)
HISTOGRAM_COLUMNS = (
    *_head(),
    _COUNT,
    _SUM,
    Column("BucketCounts", "Array(UInt64)", _ZSTD),
    Column("ExplicitBounds", "Array(Float64)", _ZSTD),
    _exemplars(),
    _FLAGS,
    *_MIN_MAX_TEMPORALITY,
)
EXP_HISTOGRAM_COLUMNS = (
    *_head(time_type="DateTime", name_type="LowCardinality(String)"),
    _COUNT,
    _SUM,
    Column("Scale", "Int32", _ZSTD),
    Column("ZeroCount", "UInt64", _ZSTD),
    Column("PositiveOffset", "Int32", _ZSTD),
    Column("PositiveBucketCounts", "Array(UInt64)", _ZSTD),
    Column("NegativeOffset", "Int32", _ZSTD),
    Column("NegativeBucketCounts", "Array(UInt64)", _ZSTD),
    _exemplars("DateTime"),
    _FLAGS,
    *_MIN_MAX_TEMPORALITY,
)
SUMMARY_COLUMNS = (
    *_head(),
    _COUNT,
    _SUM,
    Nested("ValueAtQuantiles", (Column("Quantile", "Float64"), Column("Value", "Float64")), _ZSTD),
    _FLAGS,
)

_INDEXES = """,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1"""
_VARIANT_A = (
    _INDEXES
    + """
    ) ENGINE = {engine}
    {ttl}
    PARTITION BY toDate(TimeUnix)
    ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
    SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""
)

# metrics_gauge_table.sql@e3bd2d1d
OTEL_METRICS_GAUGE_DDL = create_table(GAUGE_COLUMNS, _VARIANT_A)
# metrics_sum_table.sql@8090d3c8
OTEL_METRICS_SUM_DDL = create_table(SUM_COLUMNS, _VARIANT_A)
# metrics_histogram_table.sql@61540ced
OTEL_METRICS_HISTOGRAM_DDL = create_table(HISTOGRAM_COLUMNS, _VARIANT_A)
# metrics_exp_histogram_table.sql@469a40ce
OTEL_METRICS_EXP_HISTOGRAM_DDL = create_table(
    EXP_HISTOGRAM_COLUMNS,
    _INDEXES
    + """,
    INDEX idx_time_minmax TimeUnix TYPE minmax GRANULARITY 1
    ) ENGINE = {engine}
    {ttl}
    PARTITION BY toDate(TimeUnix)
    ORDER BY (ServiceName, MetricName, toStartOfHour(TimeUnix), cityHash64(Attributes), TimeUnix)
    SETTINGS index_granularity=8192, ttl_only_drop_parts = 1""",
)
# metrics_summary_table.sql@4d14328b
OTEL_METRICS_SUMMARY_DDL = create_table(SUMMARY_COLUMNS, _VARIANT_A)

METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "otel_metrics_gauge": column_names(GAUGE_COLUMNS),
    "otel_metrics_sum": column_names(SUM_COLUMNS),
    "otel_metrics_histogram": column_names(HISTOGRAM_COLUMNS),
    "otel_metrics_exp_histogram": column_names(EXP_HISTOGRAM_COLUMNS),
    "otel_metrics_summary": column_names(SUMMARY_COLUMNS),
}
"""The columns of each metrics table, in table order: what the receiver writes for each point type."""


def _metrics_table(name: str, ddl: str) -> Table:
    return Table(name, ddl, ttl_column="toDateTime(TimeUnix)", ttl_days=lambda o: o.samples_ttl_days)


OTEL_METRICS_GAUGE = _metrics_table("otel_metrics_gauge", OTEL_METRICS_GAUGE_DDL)
OTEL_METRICS_SUM = _metrics_table("otel_metrics_sum", OTEL_METRICS_SUM_DDL)
OTEL_METRICS_HISTOGRAM = _metrics_table("otel_metrics_histogram", OTEL_METRICS_HISTOGRAM_DDL)
OTEL_METRICS_EXP_HISTOGRAM = _metrics_table("otel_metrics_exp_histogram", OTEL_METRICS_EXP_HISTOGRAM_DDL)
OTEL_METRICS_SUMMARY = _metrics_table("otel_metrics_summary", OTEL_METRICS_SUMMARY_DDL)

OBJECTS: tuple[Table | View, ...] = (
    OTEL_METRICS_GAUGE,
    OTEL_METRICS_SUM,
    OTEL_METRICS_HISTOGRAM,
    OTEL_METRICS_EXP_HISTOGRAM,
    OTEL_METRICS_SUMMARY,
)
