"""Golden datasets in the store (``reference_answers``): load items, read them back, list the datasets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .contract import insert


@dataclass(frozen=True)
class ReferenceItem:
    """One golden answer as ``reference_answers`` stores it (the row type; parsing lives in quality.references)."""

    dataset: str
    item_id: str
    reference: str
    input: str = ""
    context: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def store_items(client: Any, database: str, items: Sequence[ReferenceItem], source: str = "") -> int:
    """Insert the items into ``reference_answers`` (same dataset and id: the newer row wins)."""
    now = datetime.now(timezone.utc)
    rows = [
        {
            "Dataset": i.dataset,
            "ItemId": i.item_id,
            "Input": i.input,
            "Reference": i.reference,
            "Context": i.context,
            "Metadata": dict(i.metadata),
            "Source": source,
            "LoadedAt": now,
        }
        for i in items
    ]
    return insert(client, database, "reference_answers", rows)


def read_items(client: Any, database: str, dataset: str | None = None) -> list[ReferenceItem]:
    """The current items (latest load of each id), of one dataset or all."""
    where = "WHERE Dataset = {dataset:String}" if dataset else ""
    result = client.query(
        "SELECT Dataset, ItemId, Reference, Input, Context, Metadata "
        f"FROM {{db:Identifier}}.reference_answers FINAL {where} ORDER BY Dataset, ItemId",
        parameters={"db": database, "dataset": dataset or ""},
    )
    return [
        ReferenceItem(dataset=d, item_id=i, reference=r, input=t, context=c, metadata=dict(m))
        for d, i, r, t, c, m in result.result_rows
    ]


def dataset_sizes(client: Any, database: str) -> list[tuple[str, int, datetime]]:
    """(dataset, items, last loaded) for every dataset."""
    result = client.query(
        "SELECT Dataset, count(), max(LoadedAt) FROM {db:Identifier}.reference_answers FINAL "
        "GROUP BY Dataset ORDER BY Dataset",
        parameters={"db": database},
    )
    return [(d, int(n), at) for d, n, at in result.result_rows]
