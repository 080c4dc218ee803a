"""The tables of spans and LLM calls (migration 1): ``otel_traces`` and its trace-id lookup, ``llm_calls``
and its materialized view, ``model_prices`` and ``feedback``; and (migration 6) ``otel_traces_joined``, the
way into ``llm_calls`` of spans the receiver joined to their GenAI events after they were stored.

``otel_traces`` and its trace-id lookup use the OpenTelemetry Collector ClickHouse exporter's released
DDL (the collector-contrib file ``exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql``,
fmt generation, released default): its columns, types, codecs, indexes, keys and settings, with our
placeholders. So spans written by our exporter, our OTLP receiver or a user's collector fleet land in one
table and Grafana's trace view works unchanged. ``llm_calls`` is filled from it by a materialized view,
so collector-written spans appear there too.

The columns the agent writes are declared once here; the DDL renders them and the row encoders list
them (``TRACE_COLUMNS``, ``TRACE_ROW_COLUMNS``, ``FEEDBACK_COLUMNS``, ``PRICE_COLUMNS``).
``LLM_CALLS_COLUMNS`` names the columns of ``llm_calls`` for its readers.
"""

from __future__ import annotations

from .model import Column, Nested, Table, View, column_names, create_table

_ZSTD = "CODEC(ZSTD(1))"
_DELTA = "CODEC(Delta, ZSTD(1))"
_MAP = "Map(LowCardinality(String), String)"
_LOW = "LowCardinality(String)"

OTEL_TRACES_COLUMNS = (
    Column("Timestamp", "DateTime64(9)", _DELTA),
    Column("TraceId", "String", _ZSTD),
    Column("SpanId", "String", _ZSTD),
    Column("ParentSpanId", "String", _ZSTD),
    Column("TraceState", "String", _ZSTD),
    Column("SpanName", _LOW, _ZSTD),
    Column("SpanKind", _LOW, _ZSTD),
    Column("ServiceName", _LOW, _ZSTD),
    Column("ResourceAttributes", _MAP, _ZSTD),
    Column("ScopeName", "String", _ZSTD),
    Column("ScopeVersion", "String", _ZSTD),
    Column("SpanAttributes", _MAP, _ZSTD),
    Column("Duration", "UInt64", _ZSTD),
    Column("StatusCode", _LOW, _ZSTD),
    Column("StatusMessage", "String", _ZSTD),
    Nested("Events", (Column("Timestamp", "DateTime64(9)"), Column("Name", _LOW), Column("Attributes", _MAP)), _ZSTD),
    Nested(
        "Links",
        (
            Column("TraceId", "String"),
            Column("SpanId", "String"),
            Column("TraceState", "String"),
            Column("Attributes", _MAP),
        ),
        _ZSTD,
    ),
)
TRACE_COLUMNS = column_names(OTEL_TRACES_COLUMNS)
"""Every ``otel_traces`` column, in table order: what the OTLP receiver writes."""
TRACE_ROW_COLUMNS = tuple(c for c in TRACE_COLUMNS if c != "TraceState" and not c.startswith("Links."))
"""What the SDK writes: its spans carry no trace state and no links, so those columns keep their defaults."""

# Placeholders: {db} {table} {cluster} {engine} {ttl}; views also {src} {dst}; llm_calls also {content_ttl}.
OTEL_TRACES_DDL = create_table(
    OTEL_TRACES_COLUMNS,
    """,
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
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1""",
)

OTEL_TRACE_ID_TS_DDL = create_table(
    (Column("TraceId", "String", _ZSTD), Column("Start", "DateTime", _DELTA), Column("End", "DateTime", _DELTA)),
    """,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = {engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1""",
)

OTEL_TRACE_ID_TS_MV_DDL = """CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{table}" {cluster}
TO "{db}"."{dst}"
AS SELECT
    TraceId,
    min(Timestamp) as Start,
    max(Timestamp) as End
FROM "{db}"."{src}"
WHERE TraceId != ''
GROUP BY TraceId"""

_TEXT = "CODEC(ZSTD(3)) {content_ttl}"  # prompt and response text: stronger compression, a shorter TTL
LLM_CALLS_DECLARED = (
    Column("Timestamp", "DateTime64(9)", _DELTA),
    Column("TraceId", "String", _ZSTD),
    Column("SpanId", "String", _ZSTD),
    Column("ParentSpanId", "String", _ZSTD),
    Column("ServiceName", _LOW),
    Column("SpanName", _LOW),
    Column("Provider", _LOW),
    Column("Operation", _LOW),
    Column("RequestModel", _LOW),
    Column("ResponseModel", _LOW),
    Column("ModelVersion", _LOW),
    Column("BaseModel", _LOW),
    Column("Quantization", _LOW),
    Column("PromptTemplate", _LOW),
    Column("PromptVersion", _LOW),
    Column("UserId", "String", _ZSTD),
    Column("SessionId", "String", _ZSTD),
    Column("ConversationId", "String", _ZSTD),
    Column("Temperature", "Nullable(Float64)"),
    Column("MaxTokens", "Nullable(UInt32)"),
    Column("TopP", "Nullable(Float64)"),
    Column("Stream", "Bool"),
    Column("RequestParams", "String", _ZSTD),
    Column("InputTokens", "Nullable(UInt64)"),
    Column("OutputTokens", "Nullable(UInt64)"),
    Column("CacheReadInputTokens", "Nullable(UInt64)"),
    Column("CacheCreationInputTokens", "Nullable(UInt64)"),
    Column("ReasoningOutputTokens", "Nullable(UInt64)"),
    Column("CostUSD", "Nullable(Float64)"),
    Column("DurationNs", "UInt64", "CODEC(T64, ZSTD(1))"),
    Column("TimeToFirstTokenSeconds", "Nullable(Float64)"),
    Column("OutputTokensPerSecond", "Nullable(Float64)"),
    Column("StatusCode", _LOW),
    Column("ErrorType", _LOW),
    Column("StatusMessage", "String", _ZSTD),
    Column("FinishReasons", f"Array({_LOW})"),
    Column("ResponseId", "String", _ZSTD),
    Column("PromptText", "String", _TEXT),
    Column("ResponseText", "String", _TEXT),
    Column("Context", "String", _TEXT),
    Column("InputMessages", "String", _TEXT),
    Column("OutputMessages", "String", _TEXT),
)
LLM_CALLS_COLUMNS = column_names(LLM_CALLS_DECLARED)
"""The columns of ``llm_calls``, in table order, for the code that reads it."""

LLM_CALLS_DDL = create_table(
    LLM_CALLS_DECLARED,
    """,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, RequestModel, toDateTime(Timestamp))
{ttl}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1""",
)

# Attribute extraction for llm_calls. Provider falls back to the deprecated gen_ai.system for legacy
# emitters; RequestModel falls back to the response model when the request did not name one (so
# per-model panels have no blank row); token counts are NULL (not 0) when the span does not carry them.
_LLM_CALLS_SELECT = """CREATE MATERIALIZED VIEW IF NOT EXISTS "{db}"."{table}" {cluster}
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

JOIN_DEFERRED = "llmpulse.llm_calls.deferred"
"""Set (``true``) by the OTLP receiver on a span whose ``llm_calls`` row it writes later, once the span's
GenAI events (sent as OTLP logs) are joined to it: the span reaches ``llm_calls`` through
``otel_traces_joined`` instead, with its content."""

LLM_CALLS_MV_DDL = _LLM_CALLS_SELECT + f"\n  AND SpanAttributes['{JOIN_DEFERRED}'] != 'true'"
LLM_CALLS_JOINED_MV_DDL = _LLM_CALLS_SELECT

MODEL_PRICES_COLUMNS = (
    Column("Model", "String"),
    Column("Provider", _LOW),
    Column("InputPerMTok", "Float64"),
    Column("OutputPerMTok", "Float64"),
    Column("CacheReadPerMTok", "Nullable(Float64)"),
    Column("CacheWritePerMTok", "Nullable(Float64)"),
    Column("Source", _LOW),
    Column("UpdatedAt", "DateTime64(3)"),
)
PRICE_COLUMNS = column_names(MODEL_PRICES_COLUMNS)

MODEL_PRICES_DDL = create_table(
    MODEL_PRICES_COLUMNS,
    """
) ENGINE = {engine}
ORDER BY Model""",
)

FEEDBACK_DECLARED = (
    Column("Timestamp", "DateTime64(3)", _DELTA),
    Column("FeedbackId", "String"),
    Column("TraceId", "String", _ZSTD),
    Column("SpanId", "String", _ZSTD),
    Column("ServiceName", _LOW),
    Column("Name", _LOW),
    Column("Score", "Nullable(Float64)"),
    Column("Label", _LOW),
    Column("Comment", "String", "CODEC(ZSTD(3))"),
    Column("UserId", "String", _ZSTD),
    Column("Source", _LOW),
    Column("Attributes", _MAP, _ZSTD),
)
FEEDBACK_COLUMNS = column_names(FEEDBACK_DECLARED)

FEEDBACK_DDL = create_table(
    FEEDBACK_DECLARED,
    """
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (Name, TraceId, Timestamp)
{ttl}""",
)


# Spans the receiver joined to their events after they were stored (``JOIN_DEFERRED``): inserted here,
# they go through the same view into llm_calls and are not stored again (Null engine).
OTEL_TRACES_JOINED_DDL = create_table(OTEL_TRACES_COLUMNS, "\n) ENGINE = {engine}")

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

OBJECTS: tuple[Table | View, ...] = (
    OTEL_TRACES,
    OTEL_TRACE_ID_TS,
    View("otel_traces_trace_id_ts_mv", OTEL_TRACE_ID_TS_MV_DDL, "otel_traces", "otel_traces_trace_id_ts"),
    LLM_CALLS,
    View("llm_calls_mv", LLM_CALLS_MV_DDL, "otel_traces", "llm_calls"),
    MODEL_PRICES,
    FEEDBACK,
)

OTEL_TRACES_JOINED = Table("otel_traces_joined", OTEL_TRACES_JOINED_DDL, engine="Null", dedup_window=False)
JOINED_OBJECTS: tuple[Table | View, ...] = (
    OTEL_TRACES_JOINED,
    View("llm_calls_joined_mv", LLM_CALLS_JOINED_MV_DDL, "otel_traces_joined", "llm_calls"),
)
"""Migration 6: the path of joined spans into llm_calls (``llm_calls_mv`` is recreated to skip them)."""
