"""Schema migrations on the real engine: idempotent, the exporter's DDL, collector-written spans in llm_calls."""

from __future__ import annotations

import time

import pytest
from llmpulse.agent.store.schema import MIGRATIONS, SchemaOptions, applied_versions, apply, render_all, set_ttl


def test_migrations_are_idempotent(ch, database) -> None:
    options = SchemaOptions(database=database)
    first = apply(ch, options)
    assert [m.version for m in first] == [m.version for m in MIGRATIONS]
    assert apply(ch, options) == []
    assert apply(ch, options) == []
    assert applied_versions(ch, options) == {m.version for m in MIGRATIONS}
    tables = {r[0] for r in ch.query(f"SHOW TABLES FROM {database}").result_rows}
    assert {
        "otel_traces",
        "otel_traces_trace_id_ts",
        "otel_traces_trace_id_ts_mv",
        "llm_calls",
        "llm_calls_mv",
        "model_prices",
        "feedback",
        "llmpulse_schema_migrations",
    } <= tables


def test_otel_traces_has_exactly_the_collector_exporter_columns(ch, database) -> None:
    apply(ch, SchemaOptions(database=database))
    columns = ch.query(
        "SELECT name, type FROM system.columns WHERE database = {d:String} AND table = 'otel_traces' ORDER BY position",
        parameters={"d": database},
    ).result_rows
    assert columns == [
        ("Timestamp", "DateTime64(9)"),
        ("TraceId", "String"),
        ("SpanId", "String"),
        ("ParentSpanId", "String"),
        ("TraceState", "String"),
        ("SpanName", "LowCardinality(String)"),
        ("SpanKind", "LowCardinality(String)"),
        ("ServiceName", "LowCardinality(String)"),
        ("ResourceAttributes", "Map(LowCardinality(String), String)"),
        ("ScopeName", "String"),
        ("ScopeVersion", "String"),
        ("SpanAttributes", "Map(LowCardinality(String), String)"),
        ("Duration", "UInt64"),
        ("StatusCode", "LowCardinality(String)"),
        ("StatusMessage", "String"),
        ("Events.Timestamp", "Array(DateTime64(9))"),
        ("Events.Name", "Array(LowCardinality(String))"),
        ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
        ("Links.TraceId", "Array(String)"),
        ("Links.SpanId", "Array(String)"),
        ("Links.TraceState", "Array(String)"),
        ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
    ]
    ddl = ch.command(f"SHOW CREATE TABLE {database}.otel_traces")
    assert "PARTITION BY toDate(Timestamp)" in ddl and "ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))" in ddl
    assert "TTL toDateTime(Timestamp) + toIntervalDay(30)" in ddl


def test_span_written_like_a_collector_appears_in_llm_calls(ch, database) -> None:
    """A legacy emitter (gen_ai.system, string attributes) written by the collector's INSERT."""
    apply(ch, SchemaOptions(database=database))
    now = time.time_ns()
    ch.command(
        f"INSERT INTO {database}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, "
        "ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage) "
        "VALUES (fromUnixTimestamp64Nano({ts:Int64}), '0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', '', '', "
        "'chat gpt-4o', 'Client', 'java-app', map('service.name','java-app'), 'io.opentelemetry.openai', '2.1', "
        "map('gen_ai.system','openai','gen_ai.operation.name','chat','gen_ai.request.model','gpt-4o',"
        "'gen_ai.usage.prompt_tokens','7','gen_ai.usage.input_tokens','7','gen_ai.usage.output_tokens','9',"
        "'gen_ai.response.finish_reasons','[\"stop\"]','error.type','timeout'), 2000000000, 'Error', 'timed out')",
        parameters={"ts": now},
    )
    ch.command(
        f"INSERT INTO {database}.otel_traces (Timestamp, TraceId, SpanId, SpanName, SpanKind, ServiceName, SpanAttributes, "
        "Duration, StatusCode) VALUES (now64(9), 'aa', 'bb', 'GET /', 'Server', 'web', map('http.method','GET'), 5, 'Unset')"
    )
    rows = list(ch.query(f"SELECT * FROM {database}.llm_calls").named_results())
    assert len(rows) == 1, "only GenAI inference spans become llm_calls rows"
    row = rows[0]
    assert row["Provider"] == "openai" and row["ServiceName"] == "java-app"
    assert row["InputTokens"] == 7 and row["OutputTokens"] == 9 and row["CacheReadInputTokens"] is None
    assert row["ErrorType"] == "timeout" and row["StatusCode"] == "Error"
    assert row["OutputTokensPerSecond"] == pytest.approx(4.5)
    assert row["CostUSD"] is None


def test_cluster_form_uses_replicated_local_and_distributed_tables() -> None:
    statements = render_all(SchemaOptions(database="obs", cluster="prod"))
    text = "\n".join(statements)
    assert all('ON CLUSTER "prod"' in s for s in statements if s.startswith("CREATE"))
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/obs/otel_traces_local', '{replica}')" in text
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/obs/model_prices_local', '{replica}', UpdatedAt)"
        in text
    )
    assert "ENGINE = Distributed('prod', 'obs', 'otel_traces_local', rand())" in text
    assert 'TO "obs"."llm_calls_local"' in text and 'FROM "obs"."otel_traces_local"' in text
    assert "non_replicated_deduplication_window" not in text, "replicated tables deduplicate by themselves"


def test_ttl_options(ch, database) -> None:
    options = SchemaOptions(database=database, traces_ttl_days=7, calls_ttl_days=0, content_ttl_days=3)
    apply(ch, options)
    assert "toIntervalDay(7)" in ch.command(f"SHOW CREATE TABLE {database}.otel_traces")
    calls_ddl = ch.command(f"SHOW CREATE TABLE {database}.llm_calls")
    assert "PromptText String CODEC(ZSTD(3)) TTL toDateTime(Timestamp) + toIntervalDay(3)" in calls_ddl.replace("`", "")
    assert "toIntervalDay(180)" not in calls_ddl, "calls_ttl_days=0 keeps rows forever"
    set_ttl(ch, SchemaOptions(database=database, traces_ttl_days=14))
    assert "toIntervalDay(14)" in ch.command(f"SHOW CREATE TABLE {database}.otel_traces")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database": "drop table"}, "not a valid ClickHouse identifier"),
        ({"cluster": "a;b"}, "not a valid ClickHouse identifier"),
        ({"traces_ttl_days": -1}, "whole number of days"),
    ],
)
def test_bad_schema_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SchemaOptions(**kwargs)
