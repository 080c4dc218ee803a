"""The building blocks of the schema: options, tables, views and migrations (no DDL of its own).

Kept apart from ``schema`` so that the DDL of each area (sidecar metrics, collectors, analyzers) can
live in its own module and ``schema`` can list them all as migrations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TTL_FIELDS = (
    "traces_ttl_days",
    "calls_ttl_days",
    "content_ttl_days",
    "feedback_ttl_days",
    "samples_ttl_days",
    "analysis_ttl_days",
)


@dataclass(frozen=True)
class SchemaOptions:
    """What the DDL depends on. TTLs are in days; 0 means keep forever."""

    database: str = "llmpulse"
    cluster: str | None = None
    traces_ttl_days: int = 30
    calls_ttl_days: int = 180
    content_ttl_days: int = 30
    feedback_ttl_days: int = 365
    samples_ttl_days: int = 30  # GPU samples, serving-engine metrics, OTLP metrics
    analysis_ttl_days: int = 365  # analyzer results, alerts, embeddings cache

    def __post_init__(self) -> None:
        for name in ("database", "cluster"):
            value = getattr(self, name)
            if value is not None and not _IDENTIFIER.match(value):
                raise ValueError(f"{name} {value!r} is not a valid ClickHouse identifier (letters, digits, '_')")
        for name in _TTL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number of days >= 0, got {value!r}")


@dataclass(frozen=True)
class Table:
    """One table: its DDL template, engine family and TTL expression source."""

    name: str
    ddl: str
    engine: str = "MergeTree"  # MergeTree | ReplacingMergeTree(UpdatedAt) ...
    ttl_column: str | None = None  # DateTime expression the TTL counts from
    ttl_days: Callable[[SchemaOptions], int] = lambda _o: 0
    dedup_window: bool = True  # tables written with insert_deduplication_token


@dataclass(frozen=True)
class View:
    name: str
    ddl: str
    src: str
    dst: str


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    objects: tuple[Table | View, ...] = ()
    statements: Callable[[SchemaOptions], list[str]] | None = None
    dedup_window: bool = False  # also ALTER its tables for insert_deduplication_token (plain MergeTree)
