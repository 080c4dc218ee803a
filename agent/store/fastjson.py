"""JSON for the export path: orjson (fast, C) with the standard library as the fallback for odd values."""

from __future__ import annotations

import json
from typing import Any

import orjson

# Non-string dict keys need OPT_NON_STR_KEYS, which makes every dict slower to write; it is used only
# when the plain call refuses such a key.
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """Compact JSON text; anything not serializable becomes its ``str()``."""
    return dumps_bytes(value).decode()


def dumps_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=str)
    except (TypeError, orjson.JSONEncodeError):  # a non-string key; an integer beyond 64 bits
        pass
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


loads = orjson.loads
