"""Run a panel's SQL on the store the way Grafana would: macros expanded, tables qualified with the database.

Grafana sends panel SQL to a data source whose default database holds the tables; the embedded store's
client has no default database (every query names its own), so :func:`qualify` prefixes each table the
schema defines with the database. Nothing else in the SQL changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .contract import schema_objects
from .macros import ALL, UNEXPANDED, MacroError, TimeRange, expand
from .model import Dashboard, Variable

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_TABLE_REFERENCE = re.compile(r"\b(FROM|JOIN)(\s+)([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\.)", re.IGNORECASE)


def qualify(sql: str, database: str) -> str:
    """``FROM t`` / ``JOIN t`` -> ``FROM "database"."t"`` for the schema's tables and views."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"bad database name {database!r}: letters, digits and _ only")
    names = schema_objects()

    def prefix(match: re.Match[str]) -> str:
        keyword, space, name = match.groups()
        return f'{keyword}{space}"{database}"."{name}"' if name in names else match.group(0)

    return _TABLE_REFERENCE.sub(prefix, sql)


@dataclass
class QueryResult:
    """Columns and rows of one query, or the error the store gave."""

    sql: str
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def render_sql(
    sql: str,
    database: str,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str]],
    all_values: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The exact SQL the store runs; raises MacroError when a macro or variable is left unexpanded."""
    expanded = qualify(expand(sql, time_range, variables, all_values), database)
    leftover = UNEXPANDED.search(expanded)
    if leftover:
        raise MacroError(f"unexpanded macro or variable {leftover.group(0)!r} in: {expanded[:300]}")
    return expanded


def run_sql(
    client: Any,
    database: str,
    sql: str,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str]],
    all_values: Mapping[str, Sequence[str]] | None = None,
    *,
    raise_errors: bool = False,
) -> QueryResult:
    """Run ``sql`` as Grafana would; store errors become ``QueryResult.error`` unless ``raise_errors``."""
    rendered = render_sql(sql, database, time_range, variables, all_values)
    try:
        result = client.query(rendered)
    except Exception as exc:
        if raise_errors:
            raise
        return QueryResult(sql=rendered, error=f"{type(exc).__name__}: {str(exc).strip()[:400]}")
    return QueryResult(
        sql=rendered,
        columns=list(result.column_names),
        types=[t.name for t in result.column_types],
        rows=[tuple(row) for row in result.result_rows],
    )


def default_variables(dashboard: Dashboard, overrides: Mapping[str, str | Sequence[str]] | None = None) -> dict:
    """Every variable at Grafana's default: query variables "All", text boxes their default."""
    values: dict[str, str | Sequence[str]] = {
        v.name: ([ALL] if v.kind == "query" else v.default) for v in dashboard.variables
    }
    values.update(overrides or {})
    return values


def variable_options(
    client: Any, database: str, variable: Variable, time_range: TimeRange, values: Mapping[str, str | Sequence[str]]
) -> list[str]:
    """The values a query variable offers (what Grafana lists in its drop-down)."""
    if variable.kind != "query":
        return []
    result = run_sql(client, database, variable.sql, time_range, values, raise_errors=True)
    return [str(row[0]) for row in result.rows]
