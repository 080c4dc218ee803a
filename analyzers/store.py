"""The analyzers' I/O shell: read windows of ``llm_calls``, write results, alerts and cached embeddings.

Everything that talks to ClickHouse lives here, so analyzers stay pure computations that tests can
feed with DataFrames. User values reach SQL only as bound parameters; column names only from the
llm_calls DDL (a whitelist), never from input.

Running analyzers::

    from llmpulse.analyzers.store import AnalysisStore, run_analyzer, run_all
    from llmpulse.analyzers.base import windows

    store = AnalysisStore(client, "llmpulse")
    window, reference = windows("1h", "7d")
    results = run_analyzer("drift", store, window, reference, {"alpha": 0.01})  # written, alerts too
    results = run_all(client, "llmpulse", "1h", "7d")  # every registered analyzer (the sidecar's job)
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from llmpulse.agent.clickhouse import insert_batch, rows_to_batch
from llmpulse.agent.schema import LLM_CALLS_DDL

from . import registry
from .base import (
    SEGMENT_COLUMNS,
    Alert,
    AnalysisResult,
    AnalyzerInputError,
    Window,
    alerts_from,
    error_result,
    progress,
    utc,
    windows,
)

_log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
LLM_CALLS_COLUMNS: tuple[str, ...] = tuple(
    c for c in re.findall(r"^    ([A-Z]\w*) ", LLM_CALLS_DDL, re.M) if c != "INDEX"
)
# Computed columns analyzers may ask for by name, besides the stored ones.
DERIVED_COLUMNS: dict[str, str] = {
    "LatencySeconds": "DurationNs / 1e9",
    "IsError": "StatusCode IN ('Error', 'STATUS_CODE_ERROR')",
    "TotalTokens": "InputTokens + OutputTokens",
}
_TEXT_COLUMNS = ("PromptText", "ResponseText", "Context", "InputMessages", "OutputMessages")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_INSERT_SETTINGS = {"async_insert": 0}


def _nanos(moment: datetime) -> int:
    delta = utc(moment) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()


class AnalysisStore:
    """Reads and writes of one database for the analyzers (a clickhouse-connect client underneath)."""

    def __init__(self, client: Any, database: str) -> None:
        if not _IDENTIFIER.match(database or ""):
            raise ValueError(f"database {database!r} is not a valid ClickHouse identifier (letters, digits, '_')")
        self.client = client
        self.database = database

    # -- reading --------------------------------------------------------------------------------

    def read_calls(
        self,
        window: Window,
        columns: Sequence[str] = ("Timestamp", "SpanId"),
        *,
        segment: Mapping[str, str] | None = None,
        segment_by: Sequence[str] = (),
        require_text: Sequence[str] = (),
        limit_per_segment: int | None = None,
        seed: int = 0,
    ) -> Any:
        """Rows of ``llm_calls`` in ``window`` as a pandas DataFrame (one column per name asked for).

        ``segment`` keeps one segment (``{"model": "gpt-4o"}``); ``segment_by`` adds the segment
        columns (SEGMENT_COLUMNS) to the frame; ``require_text`` keeps only calls whose named text
        columns are non-empty (content captured); ``limit_per_segment`` keeps a deterministic
        pseudo-random sample of at most that many rows per ``segment_by`` group (hash of SpanId and
        ``seed``), so a busy window never loads more than the analyzers use.
        """
        import pandas as pd

        wanted = list(dict.fromkeys([*columns, *(SEGMENT_COLUMNS[k] for k in segment_by)]))
        select = [self._column_sql(c) for c in wanted]
        where = [
            "Timestamp >= fromUnixTimestamp64Nano({start:Int64})",
            "Timestamp < fromUnixTimestamp64Nano({end:Int64})",
        ]
        parameters: dict[str, Any] = {"db": self.database, "start": _nanos(window.start), "end": _nanos(window.end)}
        for i, (key, value) in enumerate(sorted((segment or {}).items())):
            if key not in SEGMENT_COLUMNS:
                raise AnalyzerInputError(f"unknown segment key {key!r}; choose from {', '.join(SEGMENT_COLUMNS)}")
            where.append(f"{SEGMENT_COLUMNS[key]} = {{seg{i}:String}}")
            parameters[f"seg{i}"] = str(value)
        for column in require_text:
            if column not in _TEXT_COLUMNS:
                raise ValueError(f"require_text takes text columns {_TEXT_COLUMNS}, got {column!r}")
            where.append(f"{column} != ''")
        sql = f"SELECT {', '.join(select)} FROM {{db:Identifier}}.llm_calls WHERE {' AND '.join(where)}"
        # A fixed row order makes analyses reproducible (seeded tests see the same rows in the same order).
        if limit_per_segment is not None:
            parameters["cap"] = int(limit_per_segment)
            parameters["seed"] = int(seed)
            by = [SEGMENT_COLUMNS[k] for k in segment_by]
            sql += " ORDER BY cityHash64(SpanId, {seed:UInt64}), SpanId LIMIT {cap:UInt64}"
            sql += f" BY {', '.join(by)}" if by else ""
        else:
            sql += " ORDER BY Timestamp, SpanId"
        result = self.client.query(sql, parameters=parameters)
        return pd.DataFrame(result.result_rows, columns=wanted)

    @staticmethod
    def _column_sql(name: str) -> str:
        if name in LLM_CALLS_COLUMNS:
            return name
        if name in DERIVED_COLUMNS:
            return f"{DERIVED_COLUMNS[name]} AS {name}"
        raise ValueError(
            f"unknown llm_calls column {name!r}; known: {', '.join(LLM_CALLS_COLUMNS + tuple(DERIVED_COLUMNS))}"
        )

    # -- writing --------------------------------------------------------------------------------

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        batch = rows_to_batch(table, rows)
        insert_batch(self.client, self.database, batch, {**_INSERT_SETTINGS, "insert_deduplication_token": batch.token})
        return batch.count

    def write_results(self, results: Sequence[AnalysisResult], *, run_id: str = "") -> int:
        """Insert result rows into ``analysis_results``; returns how many."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "Timestamp": now,
                "RunId": run_id,
                "Analyzer": r.analyzer,
                "AnalyzerVersion": r.version,
                "WindowStart": r.window_start,
                "WindowEnd": r.window_end,
                "ReferenceStart": r.reference_start,
                "ReferenceEnd": r.reference_end,
                "Segment": r.segment,
                "Metric": r.metric,
                "Value": r.value,
                "PValue": r.p_value,
                "Threshold": r.threshold,
                "Alert": r.alert,
                "Status": r.status,
                "Details": _json({**r.details, **({"summary": r.summary} if r.summary else {})}),
            }
            for r in results
        ]
        return self._insert("analysis_results", rows)

    def write_alerts(self, alerts: Sequence[Alert], *, run_id: str = "") -> int:
        """Insert rows into ``alerts``; returns how many."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "Timestamp": now,
                "AlertId": uuid.uuid4().hex,
                "RunId": run_id,
                "Analyzer": a.analyzer,
                "AnalyzerVersion": a.version,
                "Severity": a.severity,
                "Title": a.title,
                "Message": a.message,
                "WindowStart": a.window_start,
                "WindowEnd": a.window_end,
                "Segment": a.segment,
                "Metric": a.metric,
                "Value": a.value,
                "PValue": a.p_value,
                "Threshold": a.threshold,
                "Details": _json(a.details),
            }
            for a in alerts
        ]
        return self._insert("alerts", rows)

    # -- embeddings cache (used by embeddings.StoreEmbeddingCache) --------------------------------

    def get_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """Cached vectors for the given text hashes (those found)."""
        found: dict[str, list[float]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 5000):
            chunk = unique[start : start + 5000]
            result = self.client.query(
                "SELECT TextHash, Embedding FROM {db:Identifier}.embeddings "
                "WHERE Model = {model:String} AND TextHash IN {hashes:Array(String)}",
                parameters={"db": self.database, "model": model, "hashes": chunk},
            )
            for text_hash, vector in result.result_rows:
                key = text_hash.decode() if isinstance(text_hash, bytes) else text_hash
                found[key] = vector
        return found

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: Any) -> int:
        """Store vectors (a 2-D array, one row per hash); returns how many rows were written."""
        if len(hashes) == 0:
            return 0
        now = datetime.now(timezone.utc)
        data = [[model, h, len(v), [float(x) for x in v], now] for h, v in zip(hashes, vectors, strict=True)]
        self.client.insert(
            "embeddings",
            data,
            column_names=["Model", "TextHash", "Dim", "Embedding", "CreatedAt"],
            database=self.database,
            settings=_INSERT_SETTINGS,
        )
        return len(data)


# ---------------------------------------------------------------------------------------------------
# Running analyzers
# ---------------------------------------------------------------------------------------------------


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
