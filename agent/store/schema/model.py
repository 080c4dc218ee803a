"""The building blocks of the schema: options, declared columns, tables, views and migrations (no DDL of its own).

Kept apart so that the DDL of each table family (traces, OTLP metrics, collectors, analyzers, quality) can
live in its own module and ``migrations`` can list them all. A table whose rows the agent encodes itself
declares its columns once, as :class:`Column` tuples: its DDL renders them, and its row encoders take
their names from them, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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
class Column:
    """One column: its name, its type and what follows the type in the DDL (codec, column TTL)."""

    name: str
    type: str
    extra: str = ""


@dataclass(frozen=True)
class Nested:
    """A ``Nested`` column: its fields are stored, and inserted, as ``<name>.<field>`` array columns."""

    name: str
    fields: tuple[Column, ...]
    extra: str = ""


Columns = Sequence[Column | Nested]


def column_names(columns: Columns) -> tuple[str, ...]:
    """The names an insert lists, in table order (a Nested column's fields as ``Name.Field``)."""
    names: list[str] = []
    for column in columns:
        if isinstance(column, Nested):
            names.extend(f"{column.name}.{field.name}" for field in column.fields)
        else:
            names.append(column.name)
    return tuple(names)


def column_types(columns: Columns) -> tuple[str, ...]:
    """The ClickHouse type of each name of ``column_names`` (a Nested field is an ``Array`` of its type)."""
    types: list[str] = []
    for column in columns:
        if isinstance(column, Nested):
            types.extend(f"Array({field.type})" for field in column.fields)
        else:
            types.append(column.type)
    return tuple(types)


def render_columns(columns: Columns, indent: str = "    ") -> str:
    """The column lines of a ``CREATE TABLE`` (without the comma after the last one)."""
    lines = []
    for column in columns:
        if isinstance(column, Nested):
            fields = ",\n".join(f"{indent * 2}{field.name} {field.type}" for field in column.fields)
            lines.append(f"{indent}{column.name} Nested (\n{fields}\n{indent}){_after(column.extra)}")
        else:
            lines.append(f"{indent}{column.name} {column.type}{_after(column.extra)}")
    return ",\n".join(lines)


def create_table(columns: Columns, rest: str) -> str:
    """A ``CREATE TABLE`` template (placeholders ``{db}`` ``{table}`` ``{cluster}`` kept): the declared
    columns, then ``rest``, which starts after the last column (``,`` and indexes, or the closing ``)``)."""
    return 'CREATE TABLE IF NOT EXISTS "{db}"."{table}" {cluster} (\n' + render_columns(columns) + rest


def _after(extra: str) -> str:
    return f" {extra}" if extra else ""


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
