"""The ClickHouse schema as versioned, idempotent migrations.

``otel_traces`` and its trace-id lookup use the OpenTelemetry Collector ClickHouse exporter's released
DDL verbatim (shared/reference/standards.md section 2.2), so spans written by our exporter, our OTLP
receiver or a user's collector fleet land in one table and Grafana's trace view works unchanged.
``llm_calls`` is filled from it by a materialized view, so collector-written spans appear there too.

With ``cluster`` set, every table becomes a ``Replicated*MergeTree`` ``<name>_local`` table created
``ON CLUSTER`` plus a ``Distributed`` table under the plain name; materialized views connect the
local tables on each shard.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import schema_analysis, schema_collectors, schema_quality, schema_sidecar
from .schema_model import Migration, SchemaOptions, Table, View

__all__ = ["MIGRATIONS", "Migration", "SchemaOptions", "Table", "View", "apply", "render_all", "set_ttl"]

MIGRATIONS_TABLE = "llmpulse_schema_migrations"


# ---------------------------------------------------------------------------------------------------
# DDL templates. Placeholders: {db} {table} {cluster} {engine} {ttl}; views also {src} {dst}.
# ---------------------------------------------------------------------------------------------------

# OpenTelemetry Collector contrib, exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql
# (fmt generation, released default), verbatim but for the placeholders.
OTEL_TRACES_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

OTEL_TRACE_ID_TS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = {engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

OTEL_TRACE_ID_TS_MV_DDL = """CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{table}" {cluster}
TO "{db}"."{dst}"
AS SELECT
    TraceId,
    min(Timestamp) as Start,
    max(Timestamp) as End
FROM "{db}"."{src}"
WHERE TraceId != ''
GROUP BY TraceId"""

LLM_CALLS_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    SpanName LowCardinality(String),
    Provider LowCardinality(String),
    Operation LowCardinality(String),
    RequestModel LowCardinality(String),
    ResponseModel LowCardinality(String),
    ModelVersion LowCardinality(String),
    BaseModel LowCardinality(String),
    Quantization LowCardinality(String),
    PromptTemplate LowCardinality(String),
    PromptVersion LowCardinality(String),
    UserId String CODEC(ZSTD(1)),
    SessionId String CODEC(ZSTD(1)),
    ConversationId String CODEC(ZSTD(1)),
    Temperature Nullable(Float64),
    MaxTokens Nullable(UInt32),
    TopP Nullable(Float64),
    Stream Bool,
    RequestParams String CODEC(ZSTD(1)),
    InputTokens Nullable(UInt64),
    OutputTokens Nullable(UInt64),
    CacheReadInputTokens Nullable(UInt64),
    CacheCreationInputTokens Nullable(UInt64),
    ReasoningOutputTokens Nullable(UInt64),
    CostUSD Nullable(Float64),
    DurationNs UInt64 CODEC(T64, ZSTD(1)),
    TimeToFirstTokenSeconds Nullable(Float64),
    OutputTokensPerSecond Nullable(Float64),
    StatusCode LowCardinality(String),
    ErrorType LowCardinality(String),
    StatusMessage String CODEC(ZSTD(1)),
    FinishReasons Array(LowCardinality(String)),
    ResponseId String CODEC(ZSTD(1)),
    PromptText String CODEC(ZSTD(3)) {content_ttl},
    ResponseText String CODEC(ZSTD(3)) {content_ttl},
    Context String CODEC(ZSTD(3)) {content_ttl},
    InputMessages String CODEC(ZSTD(3)) {content_ttl},
    OutputMessages String CODEC(ZSTD(3)) {content_ttl},
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, RequestModel, toDateTime(Timestamp))
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

# Attribute extraction for llm_calls. Provider falls back to the deprecated gen_ai.system for legacy
# emitters; RequestModel falls back to the response model when the request did not name one (so
# per-model panels have no blank row); token counts are NULL (not 0) when the span does not carry them.
LLM_CALLS_MV_DDL = """CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{table}" {cluster}
TO "{db}"."{dst}"
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    SpanName,
    if(SpanAttributes['gen_ai.provider.name'] != '', SpanAttributes['gen_ai.provider.name'],
       SpanAttributes['gen_ai.system']) AS Provider,
    SpanAttributes['gen_ai.operation.name'] AS Operation,
    if(SpanAttributes['gen_ai.request.model'] != '', SpanAttributes['gen_ai.request.model'],
       SpanAttributes['gen_ai.response.model']) AS RequestModel,
    SpanAttributes['gen_ai.response.model'] AS ResponseModel,
    SpanAttributes['llmpulse.model.version'] AS ModelVersion,
    SpanAttributes['llmpulse.model.base'] AS BaseModel,
    SpanAttributes['llmpulse.model.quantization'] AS Quantization,
    SpanAttributes['llmpulse.prompt.template'] AS PromptTemplate,
    SpanAttributes['llmpulse.prompt.version'] AS PromptVersion,
    SpanAttributes['user.id'] AS UserId,
    SpanAttributes['session.id'] AS SessionId,
    SpanAttributes['gen_ai.conversation.id'] AS ConversationId,
    toFloat64OrNull(SpanAttributes['gen_ai.request.temperature']) AS Temperature,
    toUInt32OrNull(SpanAttributes['gen_ai.request.max_tokens']) AS MaxTokens,
    toFloat64OrNull(SpanAttributes['gen_ai.request.top_p']) AS TopP,
    SpanAttributes['gen_ai.request.stream'] = 'true' AS Stream,
    SpanAttributes['llmpulse.request.params'] AS RequestParams,
    toUInt64OrNull(SpanAttributes['gen_ai.usage.input_tokens']) AS InputTokens,
    toUInt64OrNull(SpanAttributes['gen_ai.usage.output_tokens']) AS OutputTokens,
    toUInt64OrNull(SpanAttributes['gen_ai.usage.cache_read.input_tokens']) AS CacheReadInputTokens,
    toUInt64OrNull(SpanAttributes['gen_ai.usage.cache_creation.input_tokens']) AS CacheCreationInputTokens,
    toUInt64OrNull(SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS ReasoningOutputTokens,
    toFloat64OrNull(SpanAttributes['llmpulse.cost.usd']) AS CostUSD,
    Duration AS DurationNs,
    toFloat64OrNull(SpanAttributes['gen_ai.response.time_to_first_chunk']) AS TimeToFirstTokenSeconds,
    if(OutputTokens > 0 AND Duration / 1e9 > ifNull(TimeToFirstTokenSeconds, 0),
       OutputTokens / (Duration / 1e9 - ifNull(TimeToFirstTokenSeconds, 0)), NULL) AS OutputTokensPerSecond,
    StatusCode,
    SpanAttributes['error.type'] AS ErrorType,
    StatusMessage,
    JSONExtract(SpanAttributes['gen_ai.response.finish_reasons'], 'Array(String)') AS FinishReasons,
    SpanAttributes['gen_ai.response.id'] AS ResponseId,
    if(SpanAttributes['llmpulse.input.text'] != '', SpanAttributes['llmpulse.input.text'],
       JSONExtractString(arrayElement(JSONExtractArrayRaw(SpanAttributes['gen_ai.input.messages']), -1),
                         'parts', 1, 'content')) AS PromptText,
    if(SpanAttributes['llmpulse.output.text'] != '', SpanAttributes['llmpulse.output.text'],
       JSONExtractString(SpanAttributes['gen_ai.output.messages'], 1, 'parts', 1, 'content')) AS ResponseText,
    SpanAttributes['llmpulse.rag.context'] AS Context,
    SpanAttributes['gen_ai.input.messages'] AS InputMessages,
    SpanAttributes['gen_ai.output.messages'] AS OutputMessages
FROM "{db}"."{src}"
WHERE SpanAttributes['gen_ai.operation.name'] IN ('chat', 'text_completion', 'generate_content', 'embeddings')"""

MODEL_PRICES_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Model String,
    Provider LowCardinality(String),
    InputPerMTok Float64,
    OutputPerMTok Float64,
    CacheReadPerMTok Nullable(Float64),
    CacheWritePerMTok Nullable(Float64),
    Source LowCardinality(String),
    UpdatedAt DateTime64(3)
) ENGINE = {engine}
ORDER BY Model"""

FEEDBACK_DDL = """CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (
    Timestamp DateTime64(3) CODEC(Delta, ZSTD(1)),
    FeedbackId String,
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    Name LowCardinality(String),
    Score Nullable(Float64),
    Label LowCardinality(String),
    Comment String CODEC(ZSTD(3)),
    UserId String CODEC(ZSTD(1)),
    Source LowCardinality(String),
    Attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Name, TraceId, Timestamp)
{ttl}"""


OTEL_TRACES = Table(
    "otel_traces", OTEL_TRACES_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=lambda o: o.traces_ttl_days
)
OTEL_TRACE_ID_TS = Table(
    "otel_traces_trace_id_ts",
    OTEL_TRACE_ID_TS_DDL,
    ttl_column="toDateTime(Start)",
    ttl_days=lambda o: o.traces_ttl_days,
    dedup_window=False,
)
LLM_CALLS = Table("llm_calls", LLM_CALLS_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=lambda o: o.calls_ttl_days)
MODEL_PRICES = Table("model_prices", MODEL_PRICES_DDL, engine="ReplacingMergeTree(UpdatedAt)", dedup_window=False)
FEEDBACK = Table("feedback", FEEDBACK_DDL, ttl_column="toDateTime(Timestamp)", ttl_days=lambda o: o.feedback_ttl_days)


def _dedup_settings(options: SchemaOptions) -> list[str]:
    """Make insert_deduplication_token work on plain MergeTree (replicated tables dedupe already).

    The exporter DDL is kept verbatim, so this is a separate ALTER rather than an edit of it.
    """
    if options.cluster:
        return []
    return [
        f'ALTER TABLE "{options.database}"."{t.name}" MODIFY SETTING non_replicated_deduplication_window = 10000'
        for t in (OTEL_TRACES, LLM_CALLS, FEEDBACK)
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "otel traces, llm_calls, model_prices, feedback",
        objects=(
            OTEL_TRACES,
            OTEL_TRACE_ID_TS,
            View("otel_traces_trace_id_ts_mv", OTEL_TRACE_ID_TS_MV_DDL, "otel_traces", "otel_traces_trace_id_ts"),
            LLM_CALLS,
            View("llm_calls_mv", LLM_CALLS_MV_DDL, "otel_traces", "llm_calls"),
            MODEL_PRICES,
            FEEDBACK,
        ),
    ),
    Migration(2, "insert deduplication window", statements=_dedup_settings),
    Migration(
        3,
        "sidecar: OTLP metrics, GPU samples and processes, serving-engine metrics",
        objects=schema_sidecar.OBJECTS + schema_collectors.OBJECTS,
        dedup_window=True,
    ),
    Migration(
        4,
        "analyzers: results, alerts, embeddings cache",
        objects=schema_analysis.OBJECTS,
        dedup_window=True,
    ),
    Migration(
        5,
        "quality: reference answers, per-call scores",
        objects=schema_quality.OBJECTS,
        dedup_window=True,
    ),
)


def _local(name: str, options: SchemaOptions) -> str:
    return f"{name}_local" if options.cluster else name


def _engine(table: Table, options: SchemaOptions) -> str:
    family, _, args = table.engine.partition("(")
    args = args.rstrip(")")
    if not options.cluster:
        return f"{family}({args})"
    zk = f"'/clickhouse/tables/{{shard}}/{options.database}/{table.name}_local', '{{replica}}'"
    return f"Replicated{family}({zk}{', ' + args if args else ''})"


def _ttl(table: Table, options: SchemaOptions) -> str:
    days = table.ttl_days(options)
    if not table.ttl_column or days <= 0:
        return ""
    return f"TTL {table.ttl_column} + toIntervalDay({days})"


def render_object(obj: Table | View, options: SchemaOptions) -> list[str]:
    """DDL statements for one table or view (two for a table on a cluster: local and Distributed)."""
    cluster = f'ON CLUSTER "{options.cluster}"' if options.cluster else ""
    db = options.database
    if isinstance(obj, View):
        return [
            obj.ddl.format(
                db=db, table=obj.name, cluster=cluster, src=_local(obj.src, options), dst=_local(obj.dst, options)
            )
        ]
    content_days = options.content_ttl_days
    content_ttl = f"TTL toDateTime(Timestamp) + toIntervalDay({content_days})" if content_days > 0 else ""
    local = _local(obj.name, options)
    statements = [
        obj.ddl.format(
            db=db,
            table=local,
            cluster=cluster,
            engine=_engine(obj, options),
            ttl=_ttl(obj, options),
            content_ttl=content_ttl,
        )
    ]
    if options.cluster:
        statements.append(
            f'CREATE TABLE IF NOT EXISTS "{db}"."{obj.name}" {cluster} AS "{db}"."{local}" '
            f"ENGINE = Distributed('{options.cluster}', '{db}', '{local}', rand())"
        )
    return statements


def render_migration(migration: Migration, options: SchemaOptions) -> list[str]:
    statements: list[str] = []
    for obj in migration.objects:
        statements.extend(render_object(obj, options))
    if migration.statements:
        statements.extend(migration.statements(options))
    if migration.dedup_window and not options.cluster:
        statements.extend(
            f'ALTER TABLE "{options.database}"."{obj.name}" MODIFY SETTING non_replicated_deduplication_window = 10000'
            for obj in migration.objects
            if isinstance(obj, Table) and obj.dedup_window and "MergeTree" in obj.engine
        )
    return statements


def _bootstrap(options: SchemaOptions) -> list[str]:
    cluster = f'ON CLUSTER "{options.cluster}"' if options.cluster else ""
    engine = (
        f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{options.database}/{MIGRATIONS_TABLE}', '{{replica}}')"
        if options.cluster
        else "MergeTree()"
    )
    return [
        f'CREATE DATABASE IF NOT EXISTS "{options.database}" {cluster}',
        f'CREATE TABLE IF NOT EXISTS "{options.database}"."{MIGRATIONS_TABLE}" {cluster} '
        f"(Version UInt32, Name String, AppliedAt DateTime64(3)) ENGINE = {engine} ORDER BY Version",
    ]


def render_all(options: SchemaOptions) -> list[str]:
    """Every statement, in order: what ``llmpulse schema print`` shows."""
    statements = _bootstrap(options)
    for migration in MIGRATIONS:
        statements.extend(render_migration(migration, options))
    return statements


def applied_versions(client: Any, options: SchemaOptions) -> set[int]:
    rows = client.query(f'SELECT Version FROM "{options.database}"."{MIGRATIONS_TABLE}"').result_rows
    return {int(row[0]) for row in rows}


def apply(client: Any, options: SchemaOptions) -> list[Migration]:
    """Apply the migrations not yet recorded; safe to run any number of times."""
    for statement in _bootstrap(options):
        client.command(statement)
    done = applied_versions(client, options)
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in render_migration(migration, options):
            client.command(statement)
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.version, migration.name, datetime.now(timezone.utc)]],
            column_names=["Version", "Name", "AppliedAt"],
            database=options.database,
        )
        applied.append(migration)
    return applied


def set_ttl(client: Any, options: SchemaOptions) -> list[str]:
    """Change the table TTLs of an existing store to those in ``options``; returns the statements run."""
    statements = []
    tables = [obj for m in MIGRATIONS for obj in m.objects if isinstance(obj, Table) and obj.ttl_column]
    for table in tables:
        ttl = _ttl(table, options)
        target = f'"{options.database}"."{_local(table.name, options)}"'
        cluster = f' ON CLUSTER "{options.cluster}"' if options.cluster else ""
        statements.append(f"ALTER TABLE {target}{cluster} " + (f"MODIFY {ttl}" if ttl else "REMOVE TTL"))
    for statement in statements:
        client.command(statement)
    return statements
