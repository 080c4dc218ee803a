"""DDL of the analyzers' tables: results, alerts, the embeddings cache and reference answers."""

from __future__ import annotations

from .schema_model import Table, View

OBJECTS: tuple[Table | View, ...] = ()
