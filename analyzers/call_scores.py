"""I/O of per-call scores (``call_scores``) and of span attributes ``llm_calls`` does not carry.

The analyzers' store (``store.AnalysisStore``) reads ``llm_calls``; the hallucination, injection and
quality scorers also need two span attributes kept only in ``otel_traces`` (token log-probabilities,
the reference item id) and write one score row per call. Values reach SQL only as bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from .base import Window

_INSERT_SETTINGS = {"async_insert": 0}


def _nanos(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact (no float rounding), for ``fromUnixTimestamp64Nano``."""
    delta = moment.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass
class ScoreRow:
    """One row of ``call_scores``."""

    timestamp: datetime
    scorer: str
    scorer_version: str
    trace_id: str
    span_id: str
    score: float
    flagged: bool
    method: str
    threshold: float | None = None
    service: str = ""
    model: str = ""
    model_version: str = ""
    prompt_version: str = ""
    dataset: str = ""
    item_id: str = ""
    version: str = ""
    signals: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def call_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ScoreRow`` fields that name a call, from a record of ``AnalysisStore.read_calls``."""
    return {
        "timestamp": record["Timestamp"],
        "trace_id": str(record["TraceId"]),
        "span_id": str(record["SpanId"]),
        "service": str(record["ServiceName"]),
        "model": str(record["RequestModel"]),
        "model_version": str(record["ModelVersion"]),
        "prompt_version": str(record["PromptVersion"]),
    }


def _as_datetime(value: Any) -> datetime:
    """Timestamps from pandas or the driver as aware datetimes (naive ones are UTC, as the store keeps them)."""
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def write_scores(client: Any, database: str, rows: Sequence[ScoreRow]) -> int:
    """Insert score rows; returns how many."""
    from llmpulse.agent.store.insert import insert_rows

    if not rows:
        return 0
    now = datetime.now(timezone.utc)
    records = [
        {
            "Timestamp": _as_datetime(r.timestamp),
            "ScoredAt": now,
            "Scorer": r.scorer,
            "ScorerVersion": r.scorer_version,
            "TraceId": r.trace_id,
            "SpanId": r.span_id,
            "ServiceName": r.service,
            "RequestModel": r.model,
            "ModelVersion": r.model_version,
            "PromptVersion": r.prompt_version,
            "Dataset": r.dataset,
            "ItemId": r.item_id,
            "Version": r.version,
            "Score": float(r.score),
            "Threshold": r.threshold,
            "Flagged": bool(r.flagged),
            "Method": r.method,
            "Signals": {k: float(v) for k, v in r.signals.items()},
            "Details": orjson.dumps(r.details, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        }
        for r in rows
    ]
    return insert_rows(client, database, "call_scores", records, _INSERT_SETTINGS)


def span_attributes(client: Any, database: str, window: Window, keys: Sequence[str]) -> dict[str, dict[str, str]]:
    """{SpanId: {key: value}} for spans in the window that carry any of ``keys`` (from ``otel_traces``)."""
    if not keys:
        return {}
    result = client.query(
        "SELECT SpanId, mapFilter((k, v) -> has({keys:Array(String)}, k), SpanAttributes) "
        "FROM {db:Identifier}.otel_traces "
        "WHERE Timestamp >= fromUnixTimestamp64Nano({start:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end:Int64}) "
        "AND hasAny(mapKeys(SpanAttributes), {keys:Array(String)})",
        parameters={
            "db": database,
            "keys": list(keys),
            "start": _nanos(window.start),
            "end": _nanos(window.end),
        },
    )
    return {str(span): dict(attrs) for span, attrs in result.result_rows}


def read_scores(
    client: Any, database: str, scorer: str, window: Window, *, version: str | None = None
) -> dict[str, Mapping[str, Any]]:
    """{SpanId: latest score row} already stored for calls in the window (of one scorer version)."""
    where = "Scorer = {scorer:String}"
    if version is not None:
        where += " AND ScorerVersion = {version:String}"
    result = client.query(
        "SELECT SpanId, argMax(Score, ScoredAt), argMax(Flagged, ScoredAt), argMax(Method, ScoredAt), "
        "argMax(Signals, ScoredAt), argMax(ItemId, ScoredAt), argMax(Dataset, ScoredAt) "
        f"FROM {{db:Identifier}}.call_scores WHERE {where} "
        "AND Timestamp >= fromUnixTimestamp64Nano({start:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end:Int64}) "
        "AND SpanId != '' GROUP BY SpanId",
        parameters={
            "db": database,
            "scorer": scorer,
            "version": version or "",
            "start": _nanos(window.start),
            "end": _nanos(window.end),
        },
    )
    return {
        str(span): {
            "score": float(score),
            "flagged": bool(flagged),
            "method": method,
            "signals": dict(signals),
            "item_id": item_id,
            "dataset": dataset,
        }
        for span, score, flagged, method, signals, item_id, dataset in result.result_rows
    }
