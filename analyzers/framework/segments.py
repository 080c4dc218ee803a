"""Segments: the llm_calls columns a run is split by (service, model, prompt version, ...), and the split itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .errors import AnalyzerInputError

# Segment keys users name (``--segment-by model,prompt_version``) and the llm_calls columns behind them.
SEGMENT_COLUMNS: dict[str, str] = {
    "service": "ServiceName",
    "provider": "Provider",
    "operation": "Operation",
    "model": "RequestModel",
    "response_model": "ResponseModel",
    "model_version": "ModelVersion",
    "base_model": "BaseModel",
    "quantization": "Quantization",
    "prompt_template": "PromptTemplate",
    "prompt_version": "PromptVersion",
}


def parse_segment_by(value: str | Sequence[str]) -> list[str]:
    """``"model,prompt_version"`` or a list, checked against the known segment keys (``[]`` = all traffic)."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in SEGMENT_COLUMNS]
    if unknown:
        raise AnalyzerInputError(
            f"unknown segment key(s) {', '.join(unknown)}; choose from {', '.join(SEGMENT_COLUMNS)}"
        )
    return list(dict.fromkeys(names))


def iter_segments(current: Any, reference: Any, segment_by: Sequence[str]) -> Iterator[tuple[dict[str, str], Any, Any]]:
    """(segment, current rows, reference rows) for every segment seen in either window, sorted.

    Both frames must carry the SEGMENT_COLUMNS of ``segment_by`` (``store.read_calls`` adds them).
    A segment missing from one window yields an empty frame for it, so analyzers can report it.
    """
    columns = [SEGMENT_COLUMNS[k] for k in segment_by]
    if not columns:
        yield {}, current, reference
        return
    keys = set()
    for frame in (current, reference):
        if len(frame):
            keys.update(tuple(str(v) for v in row) for row in frame[columns].itertuples(index=False, name=None))
    for key in sorted(keys):
        segment = dict(zip(segment_by, key, strict=True))
        yield segment, _select(current, columns, key), _select(reference, columns, key)


def _select(frame: Any, columns: list[str], key: tuple[str, ...]) -> Any:
    if not len(frame):
        return frame
    mask = None
    for column, value in zip(columns, key, strict=True):
        part = frame[column].astype(str) == value
        mask = part if mask is None else mask & part
    return frame[mask]
