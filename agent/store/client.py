"""Opening a client on the store a command names, with a message that never shows a password."""

from __future__ import annotations

import os
from typing import Any

from .dsn import StoreTarget, open_error_message, parse_dsn

ENV_DSN = "LLMPULSE_DSN"


class StoreUnavailable(Exception):
    """The store could not be opened or reached; the message says why."""


def store_target(args: Any) -> StoreTarget:
    """The store a command names: ``args.dsn``, else ``$LLMPULSE_DSN``, else the default; ``args.database`` applies."""
    return parse_dsn(args.dsn or os.environ.get(ENV_DSN), database=args.database)


def open_client(target: StoreTarget) -> Any:
    """A client on ``target``, or StoreUnavailable with a message that never shows a password."""
    try:
        return target.client()
    except Exception as exc:
        raise StoreUnavailable(open_error_message(target, exc)) from exc
