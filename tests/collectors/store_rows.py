"""Insert collector rows the way the sidecar does: ``rows_to_batch`` then a raw JSONCompactEachRow insert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse.agent.clickhouse import INSERT_SETTINGS, ROW_FORMAT, rows_to_batch
from llmpulse.agent.schema import SchemaOptions, apply


def create_schema(ch: Any, database: str) -> None:
    apply(ch, SchemaOptions(database=database))


def insert_rows(ch: Any, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    batch = rows_to_batch(table, rows)
    ch.raw_insert(
        f"{database}.{batch.table}",
        column_names=batch.columns,
        insert_block=batch.payload,
        fmt=ROW_FORMAT,
        settings={**INSERT_SETTINGS, "insert_deduplication_token": batch.token},
    )
