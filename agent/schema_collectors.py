"""DDL of the tables the collectors fill: GPU samples and processes, serving-engine metrics, GPU cost."""

from __future__ import annotations

from .schema_model import Table, View

OBJECTS: tuple[Table | View, ...] = ()
