"""The dashboards' one door to ``llmpulse.agent``'s store contract: table names, DSNs, opening a store.

Every import from the agent stands here, inside the functions (importing the dashboards stays light),
so a change of the contract touches this module only. Dashboards only read the store.
"""

from __future__ import annotations

import argparse
from functools import cache
from typing import Any


@cache
def schema_objects() -> frozenset[str]:
    """Names of every table and view the llmpulse schema creates."""
    from llmpulse.agent.store.schema import MIGRATIONS

    return frozenset(obj.name for migration in MIGRATIONS for obj in migration.objects)


def parse_store_url(url: str) -> Any:
    """A store DSN parsed (the agent's StoreTarget: kind, host, port, username, password, database, ...)."""
    from llmpulse.agent.store.dsn import parse_dsn

    return parse_dsn(url)


def open_store(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(client, database, label without secrets) of the store a command names (``--dsn``, ``--database``).

    A store that cannot be opened raises the agent's StoreUnavailable (the CLI exits 1).
    """
    from llmpulse.agent.store.client import open_client, store_target

    target = store_target(args)
    return open_client(target), target.database, target.safe()


def duration_in_seconds(text: str) -> float:
    """Seconds of a duration in the one grammar every command and setting reads (the agent's store.duration)."""
    from llmpulse.agent.store.duration import seconds

    return seconds(text)


def canonical_duration(text: str) -> str:
    """The same duration as a whole number and one unit (``1w`` -> ``7d``), as Grafana reads it."""
    from llmpulse.agent.store.duration import canonical

    return canonical(text)


def feedback_on_calls_sql(calls: str, feedback: str = "feedback") -> str:
    """SQL of the feedback rows on the calls ``calls`` selects, each with the call it is about (the schema's rule)."""
    from llmpulse.agent.store.schema.sessions import feedback_on_calls

    return feedback_on_calls(calls, feedback)


def negative_score_at_most() -> float:
    """The feedback score at or below which feedback counts as negative."""
    from llmpulse.agent.store.schema.sessions import NEGATIVE_SCORE_AT_MOST

    return NEGATIVE_SCORE_AT_MOST
