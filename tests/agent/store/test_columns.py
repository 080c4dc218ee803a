"""Columns are declared once: what the row encoders list is what the DDL creates (issue 12)."""

from __future__ import annotations

import pytest
from llmpulse.agent.store.schema import LLM_CALLS_COLUMNS, SchemaOptions, apply, column_types
from llmpulse.agent.store.schema.metrics import METRIC_COLUMNS
from llmpulse.agent.store.schema.traces import (
    FEEDBACK_COLUMNS,
    OTEL_TRACES_COLUMNS,
    PRICE_COLUMNS,
    TRACE_COLUMNS,
    TRACE_ROW_COLUMNS,
)


@pytest.fixture(scope="module")
def columns(ch) -> dict[str, list[tuple[str, str]]]:
    database = "t_declared_columns"
    apply(ch, SchemaOptions(database=database))
    rows = ch.query(
        "SELECT table, name, type FROM system.columns WHERE database = {d:String} ORDER BY table, position",
        parameters={"d": database},
    ).result_rows
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, name, type_ in rows:
        tables.setdefault(table, []).append((name, type_))
    return tables


def _names(columns: dict[str, list[tuple[str, str]]], table: str) -> tuple[str, ...]:
    return tuple(name for name, _ in columns[table])


def test_the_declarations_are_the_tables(columns) -> None:
    assert _names(columns, "otel_traces") == TRACE_COLUMNS
    assert [type_ for _, type_ in columns["otel_traces"]] == list(column_types(OTEL_TRACES_COLUMNS))
    assert _names(columns, "llm_calls") == LLM_CALLS_COLUMNS
    assert _names(columns, "feedback") == FEEDBACK_COLUMNS
    assert _names(columns, "model_prices") == PRICE_COLUMNS
    for table, names in METRIC_COLUMNS.items():
        assert _names(columns, table) == names, table


def test_the_sdk_writes_a_subset_in_table_order() -> None:
    assert [c for c in TRACE_COLUMNS if c in TRACE_ROW_COLUMNS] == list(TRACE_ROW_COLUMNS)
