"""The one definition of a panel and a dashboard, rendered both to Grafana JSON and to the HTML report.

A :class:`Panel` says what to ask (SQL with the Grafana ClickHouse plugin's macros, against the tables
of the llmpulse schema, unqualified: the data source's default database names the database) and how to
show it (visualization, unit, thresholds). ``columns`` lists the result columns the visualization reads;
the tests run every panel's expanded SQL on the real schema and check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Visualization = Literal["timeseries", "stat", "barchart", "table", "traces"]

# Grafana query formats (sqlds): time series, table, logs, traces (the plugin's src/data/utils.ts).
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1
FORMAT_TRACES = 3


@dataclass(frozen=True)
class Threshold:
    """A step: from ``value`` upwards the colour is ``color`` (the first step has ``value`` None = -inf)."""

    value: float | None
    color: str


@dataclass(frozen=True)
class Link:
    """A data link on one column of a table: ``url`` may use ``${__value.raw}`` (the cell's value)."""

    column: str
    title: str
    url: str


@dataclass(frozen=True)
class Panel:
    """One chart, stat or table: SQL plus how to show it."""

    key: str
    title: str
    sql: str
    visualization: Visualization
    columns: tuple[str, ...]
    description: str = ""
    unit: str = "none"
    thresholds: tuple[Threshold, ...] = ()
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    width: int = 12
    height: int = 8
    stacked: bool = False
    links: tuple[Link, ...] = ()
    # Column units for tables and bar charts whose columns mix units: {column: Grafana unit}.
    column_units: tuple[tuple[str, str], ...] = ()

    @property
    def format(self) -> int:
        if self.visualization == "timeseries":
            return FORMAT_TIME_SERIES
        if self.visualization == "traces":
            return FORMAT_TRACES
        return FORMAT_TABLE

    @property
    def time_column(self) -> str | None:
        """The time column a time series is drawn against (always ``time`` in our SQL)."""
        return "time" if self.visualization == "timeseries" else None


@dataclass(frozen=True)
class Row:
    """A collapsible section header in Grafana, a heading in the report."""

    title: str


@dataclass(frozen=True)
class Variable:
    """A dashboard template variable.

    ``kind`` "query": values from ``sql`` (one column); "textbox": free text with ``default``.
    Query variables are multi-value with "All" (``$__conditionalAll`` turns an "All" filter into 1=1).
    """

    name: str
    label: str
    kind: Literal["query", "textbox"] = "query"
    sql: str = ""
    default: str = ""
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    items: tuple[Panel | Row, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ("llmpulse",)
    time_from: str = "now-6h"
    refresh: str = "1m"
    # "table.Column" times whose span inside the window the built-in report draws this dashboard over.
    data_times: tuple[str, ...] = ()

    @property
    def panels(self) -> tuple[Panel, ...]:
        return tuple(item for item in self.items if isinstance(item, Panel))
