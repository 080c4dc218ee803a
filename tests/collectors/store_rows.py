"""Insert collector rows the way the sidecar does: one JSONCompactEachRow insert with the pipeline's settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmpulse.agent.store.insert import insert_rows as insert_mappings
from llmpulse.agent.store.schema import SchemaOptions, apply


def create_schema(ch: Any, database: str) -> None:
    apply(ch, SchemaOptions(database=database))


def insert_rows(ch: Any, database: str, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    insert_mappings(ch, database, table, rows)
