"""The ClickHouse schema: one module per table family, listed as versioned, idempotent migrations.

``traces`` (spans, ``llm_calls``, prices, feedback), ``metrics`` (OTLP metrics), ``collectors`` (GPU and
serving-engine samples, GPU-cost views), ``analysis`` (analyzer results, alerts, embeddings) and
``quality`` (golden datasets, per-call scores); ``model`` holds the building blocks and ``migrations``
lists and applies them.

The migrations, and with them every table family's DDL, load on first use of a name below (PEP 562):
the SDK encodes span rows with ``traces``' column names at import, and applies the schema only when it
opens a store.
"""

from __future__ import annotations

import importlib
from typing import Any

from .model import Column, Migration, Nested, SchemaOptions, Table, View, column_names, column_types

_LAZY = {
    "MIGRATIONS": "migrations",
    "MIGRATIONS_TABLE": "migrations",
    "applied_versions": "migrations",
    "apply": "migrations",
    "render_all": "migrations",
    "set_ttl": "migrations",
    "LLM_CALLS_COLUMNS": "traces",
    "LLM_CALLS_DDL": "traces",
}

__all__ = [
    "LLM_CALLS_COLUMNS",
    "LLM_CALLS_DDL",
    "MIGRATIONS",
    "MIGRATIONS_TABLE",
    "Column",
    "Migration",
    "Nested",
    "SchemaOptions",
    "Table",
    "View",
    "applied_versions",
    "apply",
    "column_names",
    "column_types",
    "render_all",
    "set_ttl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
