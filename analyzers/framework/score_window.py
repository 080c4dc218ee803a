"""The scorers' one loop over a window: read the calls, reuse stored scores, score the rest, store them, merge.

A scorer (hallucination, injection, quality) describes itself with a :class:`CallScorer`: which calls
it reads, how it scores a batch of them (pure: records and their span attributes in, verdicts out) and
which columns it adds to the frame. :func:`score_window` does the I/O around it, so a call already
scored by the same scorer version is not scored again and a long reference window costs its scoring
once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmpulse.analyzers.io.scores import ScoreRow, call_fields, read_scores, span_attributes, write_scores

from .windows import Window


@dataclass(frozen=True)
class Verdict:
    """One call's score: the ``values`` of the columns its scorer adds, and what ``call_scores`` keeps of it."""

    values: dict[str, Any]
    score: float
    flagged: bool
    method: str
    threshold: float | None = None
    signals: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    item_id: str = ""
    version: str = ""


@dataclass(frozen=True)
class CallScorer:
    """What :func:`score_window` needs to know of a scorer.

    ``read`` holds the keyword arguments of ``AnalysisStore.read_calls`` (columns, segment_by,
    require_text, ...); ``columns`` the columns the scorer adds and their dtypes; ``attributes`` the
    span attributes (from ``otel_traces``) each call's record comes with. ``score(records,
    attributes)`` gives a :class:`Verdict` per record, or None for a call it cannot score (it is then
    left out); ``cached(row)`` the column values of a call from its stored ``read_scores`` row.
    """

    name: str
    version: str
    read: Mapping[str, Any]
    columns: Mapping[str, str]
    score: Callable[[list[dict[str, Any]], list[dict[str, str]]], Sequence[Verdict | None]]
    cached: Callable[[Mapping[str, Any]], dict[str, Any]]
    attributes: tuple[str, ...] = ()


def score_window(store: Any, window: Window, scorer: CallScorer) -> Any:
    """The window's scored calls: the frame ``read_calls`` gives plus the scorer's columns; new scores stored."""
    import pandas as pd

    frame = store.read_calls(window, **scorer.read)
    if not len(frame):
        return frame.assign(**{column: [] for column in scorer.columns})
    known = read_scores(store.client, store.database, scorer.name, window, version=scorer.version)
    values = {span: scorer.cached(row) for span, row in known.items()}
    todo = frame[~frame["SpanId"].isin(list(known))].to_dict("records")
    if todo:
        found = span_attributes(store.client, store.database, window, scorer.attributes)
        attributes = [found.get(str(record["SpanId"]), {}) for record in todo]
        rows = []
        for record, verdict in zip(todo, scorer.score(todo, attributes), strict=True):
            if verdict is None:
                continue
            values[str(record["SpanId"])] = verdict.values
            rows.append(_score_row(record, verdict, scorer))
        write_scores(store.client, store.database, rows)
    scored = frame[frame["SpanId"].isin(list(values))].copy()
    spans = [str(s) for s in scored["SpanId"]]
    for column, dtype in scorer.columns.items():
        scored[column] = pd.Series([values[s][column] for s in spans], index=scored.index, dtype=dtype)
    return scored


def _score_row(record: Mapping[str, Any], verdict: Verdict, scorer: CallScorer) -> ScoreRow:
    return ScoreRow(
        **call_fields(record),
        scorer=scorer.name,
        scorer_version=scorer.version,
        score=verdict.score,
        flagged=verdict.flagged,
        method=verdict.method,
        threshold=verdict.threshold,
        dataset=verdict.dataset,
        item_id=verdict.item_id,
        version=verdict.version,
        signals=verdict.signals,
        details=verdict.details,
    )
