"""DDL of the tables the sidecar's OTLP receiver writes besides ``otel_traces``: the OTel metrics tables."""

from __future__ import annotations

from .schema_model import Table, View

OBJECTS: tuple[Table | View, ...] = ()
