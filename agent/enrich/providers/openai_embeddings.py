"""OpenAI embeddings: a ``CreateEmbeddingResponse`` (the list of vectors and the input tokens; never streamed)."""

from __future__ import annotations

from typing import Any

from .access import _get, _get_str, _int
from .parsed import ParsedResponse


def parse_embeddings(obj: Any) -> ParsedResponse:
    res = ParsedResponse(provider=None, operation="embeddings", response_model=_get_str(obj, "model"))
    usage = _get(obj, "usage")
    res.input_tokens = _int(_get(usage, "prompt_tokens"))
    if res.input_tokens is None:
        res.input_tokens = _int(_get(usage, "input_tokens"))
    return res
