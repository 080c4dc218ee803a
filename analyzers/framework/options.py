"""Analyzer options: each analyzer's defaults, overridden by what the user gave, coerced and checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import AnalyzerInputError
from .segments import parse_segment_by


def resolve_options(defaults: Mapping[str, Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The analyzer's defaults overridden by the options it knows; values coerced to the default's type.

    Unknown keys are ignored, because ``analyze all`` hands one option set to every analyzer.
    ``segment_by`` accepts a list or a comma-separated string and is checked against SEGMENT_COLUMNS.
    """
    resolved = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults or value is None:
            continue
        resolved[key] = _coerce(key, value, defaults[key])
    if "segment_by" in resolved:
        resolved["segment_by"] = parse_segment_by(resolved["segment_by"])
    if "alpha" in resolved and not 0 < float(resolved["alpha"]) < 1:
        raise AnalyzerInputError(f"alpha must be between 0 and 1, got {resolved['alpha']!r}")
    return resolved


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise AnalyzerInputError(f"option {key}: expected {type(default).__name__}, got {value!r}") from None
    return value
