"""A time series of one value per label (a GPU, a model's metric): the panel builder two dashboards share."""

from __future__ import annotations

from llmpulse.dashboards.model import Panel


def labelled_series(
    key: str,
    title: str,
    value: str,
    column: str,
    unit: str,
    *,
    table: str,
    where: str,
    label: str,
    label_sql: str,
    **extra: object,
) -> Panel:
    """``value`` per interval of ``table`` rows matching ``where``, one series per ``label`` (``label_sql``)."""
    return Panel(
        key=key,
        title=title,
        sql=(
            f"SELECT $__timeInterval(Timestamp) AS time, {label_sql} AS {label}, {value} AS {column} FROM {table}"
            f" WHERE {where} GROUP BY time, {label} ORDER BY time"
        ),
        visualization="timeseries",
        columns=("time", label, column),
        unit=unit,
        **extra,  # type: ignore[arg-type]
    )
