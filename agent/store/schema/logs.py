"""The log table the OTLP receiver writes (migration 6): ``otel_logs``, the OpenTelemetry Collector
ClickHouse exporter's logs table.

Its DDL is the exporter's text/template generation (collector-contrib
``exporter/clickhouseexporter/internal/sqltemplates/logs_table.sql`` after PR #47720, exporter v0.151.0
and later, the schema Grafana's ClickHouse plugin calls OTel 1.3.0), bloom-filter variant (the text-index
variant needs ClickHouse 26.2): its columns, comments, types, codecs, materialized columns, indexes, keys
and settings, with our placeholders. So logs written by our receiver or by a user's collector fleet land
in one table and Grafana's log view works unchanged.

The columns the receiver inserts are declared once here (``LOG_COLUMNS``); the eight ``MATERIALIZED``
columns are computed by ClickHouse and never inserted.
"""

from __future__ import annotations

from .model import Column, Table, column_names, create_table

_ZSTD = "CODEC(ZSTD(1))"
_MAP = "Map(LowCardinality(String), String)"
_LOW = "LowCardinality(String)"


def _c(name: str, type_: str, comment: str, codec: str = _ZSTD) -> Column:
    return Column(f"`{name}`", type_, f"COMMENT '{comment}'" + (f" {codec}" if codec else ""))


OTEL_LOGS_COLUMNS = (
    _c("Timestamp", "DateTime64(9)", "Event timestamp with nanosecond precision", "CODEC(Delta(8), ZSTD(1))"),
    _c("TraceId", "String", "W3C trace identifier"),
    _c("SpanId", "String", "W3C span identifier"),
    _c("TraceFlags", "UInt8", "W3C trace flags", ""),
    _c("SeverityText", _LOW, "Log severity as text"),
    _c("SeverityNumber", "UInt8", "Log severity as number (1-24)", ""),
    _c("ServiceName", _LOW, "Service that emitted the log"),
    _c("Body", "String", "Log message body"),
    _c("ResourceSchemaUrl", _LOW, "Schema URL for the resource"),
    _c("ResourceAttributes", _MAP, "Resource attributes as key-value pairs"),
    _c("ScopeSchemaUrl", _LOW, "Schema URL for the instrumentation scope"),
    _c("ScopeName", "String", "Instrumentation scope name"),
    _c("ScopeVersion", _LOW, "Instrumentation scope version"),
    _c("ScopeAttributes", _MAP, "Instrumentation scope attributes"),
    _c("LogAttributes", _MAP, "Log record attributes"),
    _c("EventName", "String", "Event name for log records representing events"),
)
LOG_COLUMNS = tuple(name.strip("`") for name in column_names(OTEL_LOGS_COLUMNS))
"""The ``otel_logs`` columns the receiver inserts, in table order."""

_MATERIALIZED = ",\n".join(
    f"    `__otel_materialized_{key}` LowCardinality(String) MATERIALIZED ResourceAttributes['{key}'] CODEC(ZSTD(1))"
    for key in (
        "k8s.cluster.name",
        "k8s.container.name",
        "k8s.deployment.name",
        "k8s.namespace.name",
        "k8s.node.name",
        "k8s.pod.name",
        "k8s.pod.uid",
        "deployment.environment.name",
    )
)

OTEL_LOGS_DDL = create_table(
    OTEL_LOGS_COLUMNS,
    ",\n"
    + _MATERIALIZED
    + """,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""",
)

# Logs carry message content like spans do: they are kept as long as spans (traces_ttl_days).
OTEL_LOGS = Table("otel_logs", OTEL_LOGS_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=lambda o: o.traces_ttl_days)

OBJECTS = (OTEL_LOGS,)
