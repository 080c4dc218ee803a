"""DDL of the quality analyzers' tables (migration 5): golden datasets and per-call scores.

``reference_answers`` holds golden datasets loaded with ``llmpulse references load``: one row per
(dataset, item id), the expected answer and optional input and context. It is configuration, like
``model_prices``, not a time series: it is ordered by (dataset, item) rather than partitioned by day,
and has no TTL, because a golden set that silently expired would turn every quality check into "no
data". Reloading an item replaces it (ReplacingMergeTree on LoadedAt); nothing else is deleted.

``call_scores`` holds one row per (scorer, call): the hallucination score, the prompt-injection score
or the quality score against a reference, with the signals behind it. A call scored twice (overlapping
windows) collapses to its latest row on merge; readers that need exact counts use ``FINAL``.
"""

from __future__ import annotations

from .model import SchemaOptions, Table, View

REFERENCE_ANSWERS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Dataset LowCardinality(String),
    ItemId String CODEC(ZSTD(1)),
    Input String CODEC(ZSTD(3)),
    Reference String CODEC(ZSTD(3)),
    Context String CODEC(ZSTD(3)),
    Metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Source String CODEC(ZSTD(1)),
    LoadedAt DateTime64(3) CODEC(Delta, ZSTD(1))
) ENGINE = {engine}
ORDER BY (Dataset, ItemId)
SETTINGS index_granularity=8192"""

CALL_SCORES_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    ScoredAt DateTime64(3) CODEC(Delta, ZSTD(1)),
    Scorer LowCardinality(String),
    ScorerVersion LowCardinality(String),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    RequestModel LowCardinality(String),
    ModelVersion LowCardinality(String),
    PromptVersion LowCardinality(String),
    Dataset LowCardinality(String),
    ItemId String CODEC(ZSTD(1)),
    Version LowCardinality(String),
    Score Float64,
    Threshold Nullable(Float64),
    Flagged Bool,
    Method LowCardinality(String),
    Signals Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),
    Details String CODEC(ZSTD(3))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Scorer, ServiceName, RequestModel, toDateTime(Timestamp), TraceId, SpanId, Version, ItemId)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""


def _analysis_days(options: SchemaOptions) -> int:
    return options.analysis_ttl_days


REFERENCE_ANSWERS = Table(
    "reference_answers", REFERENCE_ANSWERS_DDL, engine="ReplacingMergeTree(LoadedAt)", dedup_window=False
)
CALL_SCORES = Table(
    "call_scores",
    CALL_SCORES_DDL,
    engine="ReplacingMergeTree(ScoredAt)",
    ttl_column="toDateTime(Timestamp)",
    ttl_days=_analysis_days,
    dedup_window=False,
)

OBJECTS: tuple[Table | View, ...] = (REFERENCE_ANSWERS, CALL_SCORES)
