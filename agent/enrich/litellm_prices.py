"""Prices from litellm's bundled price list, for the models the vendored table lacks.

Why: the vendored table (``model_prices.json``) holds the models we check by hand; litellm ships the
community-maintained list of thousands (``model_prices_and_context_window_backup.json``, inside the
installed package). When litellm is installed its file is read directly, never by importing litellm
(importing it may fetch the remote price map over the network) and never over the network: the file is
found with ``importlib.util.find_spec``, which locates a package without running it. Read once, on the
first model the vendored table does not know, on the export thread.

litellm prices per token (``input_cost_per_token``, ``output_cost_per_token``,
``cache_read_input_token_cost``, ``cache_creation_input_token_cost``); the table's are per million tokens.
Tiered, batch, priority and per-image/second prices are not read: the standard per-token list price is.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from .prices import ModelPrice

PACKAGE = "litellm"
FILE = "model_prices_and_context_window_backup.json"
_FIELDS = (
    ("input_cost_per_token", "input_per_mtok"),
    ("output_cost_per_token", "output_per_mtok"),
    ("cache_read_input_token_cost", "cache_read_per_mtok"),
    ("cache_creation_input_token_cost", "cache_write_per_mtok"),
)


def bundled_file() -> Path | None:
    """Where the installed litellm keeps its price list; None when litellm (or the file) is not there."""
    try:
        spec = importlib.util.find_spec(PACKAGE)  # a top-level package: found, not imported
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or ()) if spec is not None else ():
        path = Path(location) / FILE
        if path.is_file():
            return path
    return None


def _per_mtok(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return round(float(value) * 1_000_000, 9)  # 2.5e-06 * 1e6 is 2.4999999999999996


def parse(document: Any, source: str = "litellm") -> dict[str, ModelPrice]:
    """The token-priced models of a litellm price document (entries without a per-token price are skipped)."""
    prices: dict[str, ModelPrice] = {}
    if not isinstance(document, dict):
        return prices
    for name, entry in document.items():
        if name == "sample_spec" or not isinstance(name, str) or not isinstance(entry, dict):
            continue
        values = {field: _per_mtok(entry.get(key)) for key, field in _FIELDS}
        if values["input_per_mtok"] is None:
            continue
        if values["output_per_mtok"] is None:
            if entry.get("mode") != "embedding":
                continue
            values["output_per_mtok"] = 0.0  # embeddings are priced on input alone
        provider = entry.get("litellm_provider")
        prices[name.lower()] = ModelPrice(
            model=name,
            provider=provider if isinstance(provider, str) else None,
            input_per_mtok=values["input_per_mtok"],
            output_per_mtok=values["output_per_mtok"],  # type: ignore[arg-type]
            cache_read_per_mtok=values["cache_read_per_mtok"],
            cache_write_per_mtok=values["cache_write_per_mtok"],
            source=source,
        )
    return prices


def load() -> dict[str, ModelPrice]:
    """The installed litellm's price list, or an empty mapping (not installed, unreadable)."""
    path = bundled_file()
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return parse(document, source=f"litellm:{version}")
