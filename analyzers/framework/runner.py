"""Running analyzers: one by name, or all of them on one window pair, results and alerts written.

::

    from llmpulse.analyzers.framework.runner import run_all, run_analyzer
    from llmpulse.analyzers.framework.windows import windows
    from llmpulse.analyzers.io.store import AnalysisStore

    store = AnalysisStore(client, "llmpulse")
    window, reference = windows("1h", "7d")
    results = run_analyzer("drift", store, window, reference, {"alpha": 0.01})  # written, alerts too
    results = run_all(client, "llmpulse", "1h", "7d")  # every registered analyzer (the sidecar's job)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from llmpulse.analyzers.io.store import AnalysisStore

from . import registry
from .errors import AnalyzerInputError
from .progress import progress
from .results import AnalysisResult, alerts_from, error_result
from .windows import Window, windows

_log = logging.getLogger(__name__)


def run_analyzer(
    name: str,
    store: AnalysisStore,
    window: Window,
    reference: Window,
    options: Mapping[str, Any] | None = None,
    *,
    write: bool = True,
    run_id: str | None = None,
) -> list[AnalysisResult]:
    """Run one analyzer, write its results and alerts, and return the results.

    Bad user input (unknown name, bad option) raises AnalyzerInputError (a ValueError) and writes nothing. Any other
    failure inside the analyzer becomes one "error" result row, so a scheduled run records it and the
    other analyzers still run.
    """
    registry.check_name(name)
    run_id = run_id or uuid.uuid4().hex
    try:
        analyze = registry.load(name)
        results = list(analyze(store, window, reference, dict(options or {})))
    except AnalyzerInputError:
        raise
    except Exception as exc:
        _log.exception("analyzer %s failed", name)
        results = [
            error_result(analyzer=name, version=registry.version(name), window=window, reference=reference, error=exc)
        ]
    if write:
        store.write_results(results, run_id=run_id)
        store.write_alerts(alerts_from(results), run_id=run_id)
    return results


def run_all(
    client: Any,
    database: str,
    window: Window | str = "1h",
    reference: Window | str = "7d",
    *,
    names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    end: datetime | None = None,
) -> list[AnalysisResult]:
    """Run every registered analyzer (or ``names``) on one window pair; the sidecar's scheduled job.

    ``window`` and ``reference`` are Windows or durations (``"1h"``, ``"7d"``: the window ends at
    ``end``, default now, and the reference precedes it). One analyzer's bad option or failure is
    recorded as an error row and does not stop the others.
    """
    if isinstance(window, str) or isinstance(reference, str):
        if not (isinstance(window, str) and isinstance(reference, str)):
            raise ValueError("give window and reference both as durations or both as Window objects")
        window, reference = windows(window, reference, end=end)
    store = AnalysisStore(client, database)
    chosen = list(names) if names is not None else registry.names()
    for name in chosen:
        registry.check_name(name)
    run_id = uuid.uuid4().hex
    results: list[AnalysisResult] = []
    for name in progress(chosen, desc="analyzers"):
        try:
            results.extend(run_analyzer(name, store, window, reference, options, run_id=run_id))
        except AnalyzerInputError as exc:
            failed = [
                error_result(
                    analyzer=name, version=registry.version(name), window=window, reference=reference, error=exc
                )
            ]
            store.write_results(failed, run_id=run_id)
            results.extend(failed)
    return results
