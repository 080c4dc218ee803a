"""A progress bar for the analyzers' long loops, shown only to a person at a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress(items: Iterable[Any], *, desc: str, total: int | None = None) -> Iterable[Any]:
    """A tqdm progress bar on stderr for long loops; silent when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total, leave=False, file=sys.stderr)
