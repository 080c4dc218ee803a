"""Inserts of row batches, and what a failed insert says about the rows.

Every writer of the store (the export pipeline, the analyzers, the collectors' tests and benches) inserts
through ``insert_batch``: one JSONCompactEachRow insert, deduplicated by the batch's token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .rows import ROW_FORMAT, Batch, rows_to_batch

# How the rows spell times (``rows.datetime64``: "seconds.nanoseconds", or a JSON number before 2001): the
# basic parser reads them exactly. clickhouse-connect opens every client with ``best_effort``, which
# ClickHouse 24.8 reads "1733593000.123456789" with as a malformed date (CANNOT_PARSE_INPUT_ASSERTION_FAILED:
# every span refused); later versions read it either way.
ROW_PARSE_SETTINGS = {"date_time_input_format": "basic"}

# Read typed JSON attribute values as their JSON text, so Map(String, String) gets the collector's strings.
INSERT_SETTINGS = {
    "async_insert": 0,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
    "input_format_json_read_objects_as_strings": 1,
}


def insert_batch(client: Any, database: str, batch: Batch, settings: Mapping[str, Any] | None = None) -> None:
    """One JSONCompactEachRow insert of ``batch`` into ``database``.

    By default with the pipeline's insert settings and the batch's deduplication token, so a repeated
    insert of the same batch is a no-op; ``settings`` replaces both. The rows' time format
    (``ROW_PARSE_SETTINGS``) always applies.
    """
    chosen = {**INSERT_SETTINGS, "insert_deduplication_token": batch.token} if settings is None else settings
    client.raw_insert(
        f"{database}.{batch.table}",
        column_names=batch.columns,
        insert_block=batch.payload,
        fmt=ROW_FORMAT,
        settings={**ROW_PARSE_SETTINGS, **chosen},
    )


def insert_rows(
    client: Any,
    database: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows given as mappings (see ``rows_to_batch``) in one insert (see ``insert_batch``); how many."""
    if not rows:
        return 0
    batch = rows_to_batch(table, rows)
    insert_batch(client, database, batch, settings)
    return batch.count


# ClickHouse error codes that mean "this data can never be inserted" (not "the store is unavailable"):
# parse and type errors, wrong columns, values out of range. Retrying such a batch would block the spool.
_DATA_ERROR_CODES = frozenset({6, 16, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 168, 190, 321, 407, 410, 1001})
_ERROR_CODE = re.compile(r"Code: (\d+)")


def rejects_data(exc: BaseException) -> int | None:
    """The ClickHouse error code when ``exc`` says the rows themselves are bad, else None."""
    match = _ERROR_CODE.search(str(exc)[:2000])
    if match and int(match.group(1)) in _DATA_ERROR_CODES:
        return int(match.group(1))
    return None
