"""Model price table and per-call cost.

Why: cost is the number users watch, and it must be computable offline inside their process, so the table is
vendored (``model_prices.json``, list prices as of its ``as_of`` date) and never fetched at run time. Prices change
and negotiated prices differ, so users override entries (mapping or JSON file) rather than trust the defaults.

Precedence: the user's overrides, then the vendored table, then, when litellm is installed, its bundled price
list (``litellm_prices``: thousands of models, read from the installed file on the first model the others do
not know; never fetched). ``PriceTable.default()`` is that chain.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ModelPrice", "PriceTable"]

_PRICE_FILE = "model_prices.json"
_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
_REQUIRED_KEYS = ("input_per_mtok", "output_per_mtok")
_ALLOWED_KEYS = frozenset((*_PRICE_KEYS, "provider"))
# What may follow a known model name for a prefix match: dated snapshots and version tags only, so
# "gpt-4o-2024-08-06" and "claude-3-5-sonnet-v2@20241022" match but "claude-opus-4-6" (a newer model with its own
# price) or "gpt-4o-audio-preview" do not silently inherit a sibling's price.
_SNAPSHOT_SUFFIX = re.compile(r"(?:[-_@:](?:\d{4}-\d{2}-\d{2}|\d{4,8}|latest|v\d+(?::\d+)?))+")
_ROUTING_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.")
_PROVIDER_PREFIXES = ("anthropic.", "openai.")
_LOOKUP_CACHE_MAX = 1024


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens for one model; ``None`` cache prices fall back to the input price."""

    model: str
    provider: str | None
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    source: str | None = None


def _normalise(model: str) -> str:
    """Lower-case and strip gateway / cloud prefixes: ``openai/gpt-4o``, ``us.anthropic.claude-...``."""
    name = model.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    if name.startswith(_ROUTING_PREFIXES):
        name = name.split(".", 1)[1]
    if name.startswith(_PROVIDER_PREFIXES):
        name = name.split(".", 1)[1]
    return name


def _price_value(model: str, key: str, value: Any, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"price for model {model!r}: {key!r} must be a non-negative number, got {value!r}")
    return float(value)


def _token_count(value: Any) -> int | None:
    if type(value) is int:  # the common case, first
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return None


_UNSEEN: Any = object()


def _cost_at(
    price: ModelPrice,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_input_tokens: int | None,
    cache_creation_input_tokens: int | None,
) -> float | None:
    """See ``PriceTable.cost``."""
    inp = _token_count(input_tokens)
    out = _token_count(output_tokens)
    if inp is None and out is None:
        return None
    if cache_read_input_tokens is None and cache_creation_input_tokens is None:  # the common case
        return ((inp or 0) * price.input_per_mtok + (out or 0) * price.output_per_mtok) / 1_000_000
    cache_read = _token_count(cache_read_input_tokens) or 0
    cache_write = _token_count(cache_creation_input_tokens) or 0
    uncached = max((inp or 0) - cache_read - cache_write, 0)
    read_price = price.input_per_mtok if price.cache_read_per_mtok is None else price.cache_read_per_mtok
    write_price = price.input_per_mtok if price.cache_write_per_mtok is None else price.cache_write_per_mtok
    total = (
        uncached * price.input_per_mtok
        + cache_read * read_price
        + cache_write * write_price
        + (out or 0) * price.output_per_mtok
    )
    return total / 1_000_000


class _Fallback:
    """A price table loaded on first use (litellm's 3.5 MB list: read only when a model is missing), once."""

    __slots__ = ("_load", "_lock", "_table")

    def __init__(self, load: Callable[[], Mapping[str, ModelPrice]]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._table: PriceTable | None = None

    def table(self) -> PriceTable:
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    try:
                        prices = self._load()
                    except Exception:  # a broken optional file must not break pricing
                        prices = {}
                    self._table = PriceTable(prices)
                table = self._table
        return table


class PriceTable:
    """Immutable lookup of ``ModelPrice`` by model name, with cost computation.

    Args:
        prices: Model prices; keys are matched case-insensitively.
        as_of: Date the prices were valid (from the vendored file).
        source: Where the prices come from.
        fallback: Loads the prices of models this table lacks (called once, when first needed).
    """

    __slots__ = ("_cache", "_fallback", "_prefixes", "_prices", "as_of", "source")

    def __init__(
        self,
        prices: Mapping[str, ModelPrice] | None = None,
        *,
        as_of: str | None = None,
        source: str = "",
        fallback: Callable[[], Mapping[str, ModelPrice]] | _Fallback | None = None,
    ) -> None:
        self._prices: dict[str, ModelPrice] = {k.lower(): v for k, v in (prices or {}).items()}
        # Longest first so the first prefix hit is the most specific ("gpt-4o-mini" before "gpt-4o").
        self._prefixes = sorted(self._prices, key=len, reverse=True)
        self._cache: dict[str, ModelPrice | None] = {}
        self._fallback = fallback if fallback is None or isinstance(fallback, _Fallback) else _Fallback(fallback)
        self.as_of = as_of
        self.source = source

    # -- construction --------------------------------------------------------------------------------------------

    @classmethod
    def vendored(cls) -> PriceTable:
        """Load the price table shipped with the package (``llmpulse/agent/enrich/model_prices.json``)."""
        try:
            text = (
                resources.files(__package__ or "llmpulse.agent.enrich")
                .joinpath(_PRICE_FILE)
                .read_text(encoding="utf-8")
            )
        except (ModuleNotFoundError, FileNotFoundError, TypeError):  # e.g. imported outside the package
            text = (Path(__file__).resolve().parent / _PRICE_FILE).read_text(encoding="utf-8")
        doc = json.loads(text)
        as_of = doc.get("as_of")
        source = f"vendored:{as_of}" if as_of else "vendored"
        prices = {name: _parse_entry(name, entry, None, source) for name, entry in _models_of(doc).items()}
        return cls(prices, as_of=as_of, source=doc.get("source", ""))

    @classmethod
    def default(cls) -> PriceTable:
        """The vendored table, then litellm's bundled price list for the models it lacks (when installed)."""
        from .litellm_prices import load

        vendored = cls.vendored()
        return cls(vendored._prices, as_of=vendored.as_of, source=vendored.source, fallback=load)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, float]] | str | os.PathLike | None) -> PriceTable:
        """Return a copy with some prices replaced or added.

        Args:
            overrides: ``{model: {"input_per_mtok": .., "output_per_mtok": .., "cache_read_per_mtok": ..,
                "cache_write_per_mtok": .., "provider": ..}}`` or a path to a JSON file of that shape (a file shaped
                like the vendored one, with a top-level ``"models"`` key, is accepted too). Known models may override
                single fields; new models need at least input and output prices. ``None`` returns ``self``.

        Raises:
            ValueError: On a bad shape, naming the model and the offending key.
        """
        if overrides is None:
            return self
        if isinstance(overrides, (str, os.PathLike)):
            path = Path(overrides)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ValueError(f"price override file {str(path)!r} is not valid JSON: {exc}") from exc
            models = _models_of(data) if isinstance(data, Mapping) else data
            source = f"override:{path.name}"
        else:
            models = overrides
            source = "override"
        if not isinstance(models, Mapping):
            raise ValueError(f"price overrides must map model name -> prices, got {type(models).__name__}")
        prices = dict(self._prices)
        for name, entry in models.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"price override model name must be a non-empty string, got {name!r}")
            key = name.strip().lower()
            prices[key] = _parse_entry(name.strip(), entry, prices.get(key), source)
        return PriceTable(prices, as_of=self.as_of, source=self.source, fallback=self._fallback)

    # -- queries -------------------------------------------------------------------------------------------------

    def lookup(self, model: str | None) -> ModelPrice | None:
        """Find the price of ``model``: exact (case-insensitive) name, else the longest known name it extends.

        A known name only matches a longer one when what follows is a snapshot or version tag
        (``gpt-4o-2024-08-06`` -> ``gpt-4o``; ``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``;
        ``claude-3-5-sonnet-v2@20241022`` -> ``claude-3-5-sonnet``). ``provider/`` and Bedrock-style prefixes are
        ignored (``openai/gpt-4o``, ``us.anthropic.claude-sonnet-4-20250514-v1:0``). A model none of this
        matches is looked up, the same way, in the fallback table.
        """
        if not isinstance(model, str) or not model.strip():
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = self._find(model)
        if len(self._cache) >= _LOOKUP_CACHE_MAX:
            self._cache.clear()
        self._cache[model] = found
        return found

    def _find(self, model: str) -> ModelPrice | None:
        exact = self._prices.get(model.strip().lower())
        if exact is not None:
            return exact
        name = _normalise(model)
        exact = self._prices.get(name)
        if exact is not None:
            return exact
        for known in self._prefixes:
            if name.startswith(known) and _SNAPSHOT_SUFFIX.fullmatch(name, len(known)):
                return self._prices[known]
        if self._fallback is not None:
            return self._fallback.table()._find(model)
        return None

    def cost(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
    ) -> float | None:
        """USD cost of one call.

        ``input_tokens`` includes cached tokens (semconv), so ``input - cache_read - cache_write`` is billed at the
        input price, cache reads at the cache-read price and cache writes at the cache-write price (each falling
        back to the input price when the model has none).

        Returns:
            The cost, or ``None`` when the model is unknown or neither input nor output tokens are known
            (a single missing count, e.g. output of an embedding call, counts as zero).
        """
        price = self.lookup(model)
        if price is None:
            return None
        return _cost_at(price, input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens)

    def span_cost(
        self,
        models: Iterable[object],
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
    ) -> float | None:
        """The ``llmpulse.cost.usd`` of one call: the one cost computation of the SDK's spans and the receiver's.

        The cost (see ``cost``) at the price of the first of ``models`` the table knows (a dated response
        model, then the requested one; non-string and empty names are skipped), rounded to 10 decimal
        places as stored. None when no model is known, or when neither input nor output tokens are.
        """
        cache = self._cache
        for model in models:
            if isinstance(model, str) and model:
                price = cache.get(model, _UNSEEN)
                if price is _UNSEEN:
                    price = self.lookup(model)
                if price is not None:
                    cost = _cost_at(
                        price, input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
                    )
                    return None if cost is None else round(cost, 10)
        return None

    def rows(self) -> list[ModelPrice]:
        """All prices, sorted by model name (for loading into the ``model_prices`` table); the fallback's are
        not listed (thousands of models, read only when needed)."""
        return [self._prices[k] for k in sorted(self._prices)]

    def __len__(self) -> int:
        return len(self._prices)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def __repr__(self) -> str:
        fallback = ", with a fallback" if self._fallback is not None else ""
        return f"PriceTable({len(self._prices)} models, as_of={self.as_of!r}{fallback})"


def _models_of(doc: Any) -> Any:
    """The model mapping of a price document: its ``"models"`` key when present, else the document itself."""
    if isinstance(doc, Mapping) and isinstance(doc.get("models"), Mapping):
        return doc["models"]
    return doc


def _parse_entry(model: str, entry: Any, base: ModelPrice | None, source: str) -> ModelPrice:
    """Validate one ``{"input_per_mtok": ...}`` entry, merging it over ``base`` when the model is already known."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"price for model {model!r}: expected a mapping of prices, got {type(entry).__name__}")
    for key in entry:
        if key not in _ALLOWED_KEYS:
            raise ValueError(
                f"price for model {model!r}: unknown key {key!r} (allowed: {', '.join(sorted(_ALLOWED_KEYS))})"
            )
    if base is None:
        for key in _REQUIRED_KEYS:
            if key not in entry:
                raise ValueError(f"price for model {model!r}: missing required key {key!r}")
    values: dict[str, Any] = {}
    for key in _PRICE_KEYS:
        if key in entry:
            values[key] = _price_value(model, key, entry[key], nullable=key not in _REQUIRED_KEYS)
    if "provider" in entry:
        provider = entry["provider"]
        if provider is not None and not isinstance(provider, str):
            raise ValueError(f"price for model {model!r}: 'provider' must be a string, got {provider!r}")
        values["provider"] = provider
    if base is not None:
        return replace(base, source=source, **values)
    return ModelPrice(
        model=model,
        provider=values.get("provider"),
        input_per_mtok=values["input_per_mtok"],
        output_per_mtok=values["output_per_mtok"],
        cache_read_per_mtok=values.get("cache_read_per_mtok"),
        cache_write_per_mtok=values.get("cache_write_per_mtok"),
        source=source,
    )
