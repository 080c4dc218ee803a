"""DDL of the analyzers' tables: results, alerts and the embeddings cache (migration 4).

``analysis_results`` holds one row per (run, analyzer, segment, metric), including the explicit
"not_enough_data" and "error" rows, so a dashboard can tell "no drift" from "not tested".
``alerts`` holds the alerting subset with a human title and message. ``embeddings`` caches one vector
per (model, text hash) so each text is embedded once; the text itself is not stored (it lives, with
its shorter content TTL, in ``llm_calls``).
"""

from __future__ import annotations

from .model import SchemaOptions, Table, View

ANALYSIS_RESULTS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    RunId String CODEC(ZSTD(1)),
    Analyzer LowCardinality(String),
    AnalyzerVersion LowCardinality(String),
    WindowStart DateTime64(3) CODEC(Delta, ZSTD(1)),
    WindowEnd DateTime64(3) CODEC(Delta, ZSTD(1)),
    ReferenceStart Nullable(DateTime64(3)),
    ReferenceEnd Nullable(DateTime64(3)),
    Segment Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Metric LowCardinality(String),
    Value Nullable(Float64),
    PValue Nullable(Float64),
    Threshold Nullable(Float64),
    Alert Bool,
    Status LowCardinality(String),
    Details String CODEC(ZSTD(3))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Analyzer, Metric, WindowEnd)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

ALERTS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    AlertId String CODEC(ZSTD(1)),
    RunId String CODEC(ZSTD(1)),
    Analyzer LowCardinality(String),
    AnalyzerVersion LowCardinality(String),
    Severity LowCardinality(String),
    Title String CODEC(ZSTD(3)),
    Message String CODEC(ZSTD(3)),
    WindowStart DateTime64(3) CODEC(Delta, ZSTD(1)),
    WindowEnd DateTime64(3) CODEC(Delta, ZSTD(1)),
    Segment Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Metric LowCardinality(String),
    Value Nullable(Float64),
    PValue Nullable(Float64),
    Threshold Nullable(Float64),
    Details String CODEC(ZSTD(3))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Analyzer, Severity, Timestamp)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

# ReplacingMergeTree keyed by (Model, TextHash): a text embedded twice by racing runs collapses to one
# row on merge, and readers tolerate duplicates (any copy is the same vector).
EMBEDDINGS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Model LowCardinality(String),
    TextHash FixedString(32),
    Dim UInt16,
    Embedding Array(Float32) CODEC(ZSTD(1)),
    CreatedAt DateTime64(3) CODEC(Delta, ZSTD(1))
) ENGINE = {engine}
PARTITION BY toDate(CreatedAt)
ORDER BY (Model, TextHash)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""


def _analysis_days(options: SchemaOptions) -> int:
    return options.analysis_ttl_days


ANALYSIS_RESULTS = Table(
    "analysis_results", ANALYSIS_RESULTS_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=_analysis_days
)
ALERTS = Table("alerts", ALERTS_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=_analysis_days)
EMBEDDINGS = Table(
    "embeddings",
    EMBEDDINGS_DDL,
    engine="ReplacingMergeTree(CreatedAt)",
    ttl_column="toDateTime(CreatedAt)",
    ttl_days=_analysis_days,
    dedup_window=False,
)

OBJECTS: tuple[Table | View, ...] = (ANALYSIS_RESULTS, ALERTS, EMBEDDINGS)
