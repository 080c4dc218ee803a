"""The analyzers' one door to ``llmpulse.agent``'s store contract: table columns, inserts, opening a store.

Every import from the agent's store internals stands here, so a change of the contract touches this
module only.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

INSERT_SETTINGS = {"async_insert": 0}


@cache
def llm_calls_columns() -> tuple[str, ...]:
    """The stored columns of ``llm_calls``: the only names the analyzers' SQL may select."""
    from llmpulse.agent.store.schema import LLM_CALLS_COLUMNS

    return tuple(LLM_CALLS_COLUMNS)


def insert(
    client: Any, database: str, table: str, rows: Sequence[Mapping[str, Any]], *, deduplicate: bool = False
) -> int:
    """Insert rows given as mappings (one table, the same keys in each) in one synchronous insert; how many.

    ``deduplicate`` gives the insert its batch's deduplication token, so the engine drops a repeat of it.
    """
    from llmpulse.agent.store.insert import insert_batch
    from llmpulse.agent.store.rows import rows_to_batch

    if not rows:
        return 0
    batch = rows_to_batch(table, rows)
    settings = {**INSERT_SETTINGS, "insert_deduplication_token": batch.token} if deduplicate else INSERT_SETTINGS
    insert_batch(client, database, batch, settings)
    return batch.count


def open_store(args: argparse.Namespace, *, apply_schema: bool = True) -> tuple[Any, str]:
    """A client on the store a command names (``--dsn``, ``--database``) and its database.

    With ``apply_schema`` the missing tables are created first. The store that cannot be opened raises
    the agent's StoreUnavailable, which the CLI turns into exit status 1.
    """
    from llmpulse.agent.store.client import open_client, store_target
    from llmpulse.agent.store.schema import SchemaOptions, apply

    target = store_target(args)
    client = open_client(target)
    if apply_schema:
        try:
            apply(client, SchemaOptions(database=target.database))
        except BaseException:
            client.close()
            raise
    return client, target.database


def feedback_on_calls_sql(calls: str, feedback: str) -> str:
    """SQL of the feedback rows on the calls ``calls`` selects, each with the call it is about (the schema's rule)."""
    from llmpulse.agent.store.schema.sessions import feedback_on_calls

    return feedback_on_calls(calls, feedback)
