"""DDL of the quality analyzers' tables: reference answers (golden datasets) and per-call scores."""

from __future__ import annotations

from .schema_model import Table, View

OBJECTS: tuple[Table | View, ...] = ()
