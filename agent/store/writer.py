"""The store's writer: one clickhouse-connect client, the schema applied before its first insert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from .dsn import StoreTarget
from .insert import insert_batch
from .rows import Batch
from .schema.model import SchemaOptions
from .schema.traces import PRICE_COLUMNS


class ModelPriceRow(Protocol):
    """One model's prices, as the ``model_prices`` table holds them."""

    model: str
    provider: str | None
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    cache_write_per_mtok: float | None
    source: str | None


class PriceList(Protocol):
    """The price table in use (the SDK's ``PriceTable``): its rows, for ``model_prices``."""

    def rows(self) -> Sequence[ModelPriceRow]: ...


def load_prices(client: Any, database: str, prices: PriceList) -> int:
    """Write the price table in use (vendored plus overrides) to ``model_prices``, for dashboards and audits.

    ``model_prices`` is a ReplacingMergeTree keyed by model, so the latest load of a model wins.
    """
    now = datetime.now(timezone.utc)
    rows = [
        [p.model, p.provider or "", p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok,
         p.cache_write_per_mtok, p.source or "vendored", now]
        for p in prices.rows()
    ]  # fmt: skip
    if rows:
        client.insert("model_prices", rows, column_names=PRICE_COLUMNS, database=database)
    return len(rows)


class ClickHouseWriter:
    """Owns one clickhouse-connect client; applies the schema (and loads the prices) before the first insert.

    The migrations, with every table family's DDL, are imported when the store is first opened.
    """

    def __init__(
        self, target: StoreTarget, schema: SchemaOptions, *, apply_schema: bool = True, prices: PriceList | None = None
    ) -> None:
        self.target = target
        self.schema = schema
        self.apply_schema = apply_schema
        self.prices = prices
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The open client, or None before ``connect`` (and after ``reset``)."""
        return self._client

    def connect(self) -> None:
        """Open the client and make sure the schema exists. Raises when the store is unreachable."""
        if self._client is not None:
            return
        client = self.target.client()
        try:
            if self.apply_schema:
                from .schema.migrations import apply

                apply(client, self.schema)
                if self.prices is not None:
                    load_prices(client, self.schema.database, self.prices)
        except BaseException:
            _close(client)
            raise
        self._client = client

    def insert(self, batch: Batch) -> None:
        """Insert one batch; its token makes a repeated insert of the same batch a no-op."""
        self.connect()
        try:
            insert_batch(self._client, self.schema.database, batch)
        except BaseException:
            if not self.target.embedded:
                self.reset()  # a server connection may be broken: reconnect next time
            raise

    def forget(self) -> None:
        """Drop the client without closing it: a forked child must never use its parent's sockets."""
        self._client = None

    def reset(self) -> None:
        client, self._client = self._client, None
        _close(client)

    close = reset


def _close(client: Any) -> None:
    if client is None:
        return
    try:
        client.close()
    except Exception:
        pass
