"""The schema as versioned, idempotent migrations: rendering, applying, and changing TTLs.

Each table family's DDL lives in its own module (``traces``, ``metrics``, ``collectors``, ``analysis``,
``quality``); this module lists them as migrations, in order, and applies the ones a store lacks.

With ``cluster`` set, every table becomes a ``Replicated*MergeTree`` ``<name>_local`` table created
``ON CLUSTER`` plus a ``Distributed`` table under the plain name; materialized views connect the
local tables on each shard.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import analysis, collectors, logs, metrics, quality, sessions, traces
from .model import Migration, SchemaOptions, Table, View
from .traces import FEEDBACK, LLM_CALLS, OTEL_TRACES

MIGRATIONS_TABLE = "llmpulse_schema_migrations"


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


def _recreate_llm_calls_view(options: SchemaOptions) -> list[str]:
    """Stores made before migration 6 have the view without its skip of deferred spans: drop, create again."""
    cluster = f'ON CLUSTER "{options.cluster}"' if options.cluster else ""
    view = View("llm_calls_mv", traces.LLM_CALLS_MV_DDL, "otel_traces", "llm_calls")
    return [f'DROP VIEW IF EXISTS "{options.database}"."{view.name}" {cluster}', *render_object(view, options)]


def _sessions_backfill_then_views(options: SchemaOptions) -> list[str]:
    """Roll up the calls already stored, then start the views (after the tables: see ``sessions``); and
    replace ``serving_histogram_quantile`` of stores made before it ran on ClickHouse 24.8 (``collectors``)."""
    statements = sessions.backfill(options)
    for view in sessions.VIEWS:
        statements.extend(render_object(view, options))
    for statement in render_object(collectors.SERVING_HISTOGRAM_QUANTILE, options):
        statements.append(statement.replace("CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE VIEW", 1))
    return statements


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "otel traces, llm_calls, model_prices, feedback",
        objects=traces.OBJECTS,
    ),
    Migration(2, "insert deduplication window", statements=_dedup_settings),
    Migration(
        3,
        "sidecar: OTLP metrics, GPU samples and processes, serving-engine metrics",
        objects=metrics.OBJECTS + collectors.OBJECTS,
        dedup_window=True,
    ),
    Migration(
        4,
        "analyzers: results, alerts, embeddings cache",
        objects=analysis.OBJECTS,
        dedup_window=True,
    ),
    Migration(
        5,
        "quality: reference answers, per-call scores",
        objects=quality.OBJECTS,
        dedup_window=True,
    ),
    Migration(
        6,
        "receiver: OTLP logs, GenAI events joined to their spans",
        objects=logs.OBJECTS + traces.JOINED_OBJECTS,
        statements=_recreate_llm_calls_view,
        dedup_window=True,
    ),
    Migration(
        7,
        "sessions and users: rollups of llm_calls per session, user and trace; a serving quantile view 24.8 runs",
        objects=sessions.TABLES,
        statements=_sessions_backfill_then_views,
        dedup_window=True,
    ),
)


def _local(name: str, options: SchemaOptions) -> str:
    return f"{name}_local" if options.cluster else name


def _engine(table: Table, options: SchemaOptions) -> str:
    family, _, args = table.engine.partition("(")
    args = args.rstrip(")")
    if not options.cluster or family == "Null":  # a Null table stores nothing: nothing to replicate
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
