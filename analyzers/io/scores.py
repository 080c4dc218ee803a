"""Per-call scores (``call_scores``) and the span attributes ``llm_calls`` does not carry.

The hallucination, injection and quality scorers write one score row per call and read back the rows
they wrote before; they also need span attributes kept only in ``otel_traces`` (token
log-probabilities, the reference item id). ``llmpulse eval`` writes and reads rows of its own scorer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from llmpulse.analyzers.framework.windows import Window

from .contract import insert
from .sql import IN_WINDOW, json_text, window_parameters


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


CALL_COLUMNS = ["Timestamp", "TraceId", "SpanId", "ServiceName", "RequestModel", "ModelVersion", "PromptVersion"]
"""The ``llm_calls`` columns :func:`call_fields` reads: a scorer reads them with the texts it scores."""


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
            "Details": json_text(r.details),
        }
        for r in rows
    ]
    return insert(client, database, "call_scores", records)


def span_attributes(client: Any, database: str, window: Window, keys: Sequence[str]) -> dict[str, dict[str, str]]:
    """{SpanId: {key: value}} for spans in the window that carry any of ``keys`` (from ``otel_traces``)."""
    if not keys:
        return {}
    result = client.query(
        "SELECT SpanId, mapFilter((k, v) -> has({keys:Array(String)}, k), SpanAttributes) "
        f"FROM {{db:Identifier}}.otel_traces WHERE {IN_WINDOW} "
        "AND hasAny(mapKeys(SpanAttributes), {keys:Array(String)})",
        parameters={**window_parameters(database, window), "keys": list(keys)},
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
        f"FROM {{db:Identifier}}.call_scores WHERE {where} AND {IN_WINDOW} AND SpanId != '' GROUP BY SpanId",
        parameters={**window_parameters(database, window), "scorer": scorer, "version": version or ""},
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


def eval_scores(client: Any, database: str, dataset: str, version: str) -> dict[str, dict[str, float]]:
    """{item id: {metric: value}} of the latest ``llmpulse eval`` of ``version`` on ``dataset``."""
    result = client.query(
        "SELECT ItemId, argMax(Signals, ScoredAt) FROM {db:Identifier}.call_scores "
        "WHERE Scorer = 'eval' AND Dataset = {dataset:String} AND Version = {version:String} GROUP BY ItemId",
        parameters={"db": database, "dataset": dataset, "version": version},
    )
    return {str(item): {str(k): float(v) for k, v in signals.items()} for item, signals in result.result_rows}
