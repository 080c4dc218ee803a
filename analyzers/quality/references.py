"""Golden datasets: parse a JSONL or CSV file into reference items, and find the item a call answered.

A file holds one item per line (JSONL) or row (CSV with a header). Columns, with accepted aliases:

* ``reference`` (``expected``, ``expected_output``, ``answer``, ``ideal``): the expected answer, required;
* ``item_id`` (``id``): the item's id; without it the id is derived from the input (``sha1:...``), so
  the same input always gets the same id;
* ``input`` (``question``, ``prompt``, ``query``): what the model is asked; needed to match calls by
  exact input and to run the set through a function (``llmpulse eval``);
* ``context`` (``knowledge``, ``documents``): optional RAG context;
* ``dataset``: the dataset name when the file holds several (else ``--dataset``, else the file name);
* any other column is kept as text metadata.

The whole file is checked before anything is written: a bad file names its first bad lines and
stores nothing, and loading (``io.references.store_items``) replaces items with the same (dataset, id)
without touching others.
Calls are matched to items by the ``llmpulse.reference.item_id`` span attribute (set it with
``llmpulse.agent.attributes(attributes={"llmpulse.reference.item_id": ...})``), else by exact input.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmpulse.analyzers.io.references import ReferenceItem

ITEM_ID_ATTRIBUTE = "llmpulse.reference.item_id"
DATASET_ATTRIBUTE = "llmpulse.reference.dataset"
MAX_ERRORS_SHOWN = 10

ALIASES: dict[str, tuple[str, ...]] = {
    "reference": ("reference", "expected", "expected_output", "answer", "ideal"),
    "item_id": ("item_id", "id"),
    "input": ("input", "question", "prompt", "query"),
    "context": ("context", "knowledge", "documents"),
    "dataset": ("dataset",),
}
_NAME = re.compile(r"^[\w.\-]{1,100}$")


class ReferenceFileError(ValueError):
    """A file that cannot be loaded; the message lists what is wrong, with line numbers."""


def input_id(text: str) -> str:
    """The id of an item that has none: a hash of its input."""
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def check_dataset_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ReferenceFileError(
            f"bad dataset name {name!r}: use 1-100 letters, digits, '_', '-' or '.' (e.g. support-faq-v2)"
        )
    return name


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)  # context given as a list of documents
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def _pick(record: Mapping[str, Any], key: str) -> tuple[str | None, str]:
    """(column used, value) for a canonical key; (None, "") when no alias is present."""
    for alias in ALIASES[key]:
        if alias in record:
            return alias, _text(record[alias]).strip() if key != "reference" else _text(record[alias])
    return None, ""


def _records(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | str]]:
    """(line number, record) or (line number, error text) for each non-empty line or row."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"
                    continue
                yield number, record if isinstance(record, dict) else "expected a JSON object {...}"
    elif suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                return
            fields = [f.strip() for f in reader.fieldnames]
            if not any(alias in fields for alias in ALIASES["reference"]):
                raise ReferenceFileError(
                    f"{path}: no reference column; the header has {', '.join(fields)}; "
                    f"name one of {', '.join(ALIASES['reference'])}"
                )
            reader.fieldnames = fields
            for row in reader:
                if None in row:
                    yield reader.line_num, f"{len(fields) + len(row[None])} fields but the header has {len(fields)}"
                    continue
                if not any((v or "").strip() for v in row.values()):
                    continue
                yield reader.line_num, row
    else:
        raise ReferenceFileError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .jsonl or .csv")


def parse_file(path: str | Path, dataset: str | None = None) -> list[ReferenceItem]:
    """Every item of the file, or ReferenceFileError listing the bad lines (nothing partial)."""
    path = Path(path)
    if not path.exists():
        raise ReferenceFileError(f"file not found: {path}")
    if not path.is_file():
        raise ReferenceFileError(f"not a file: {path}")
    default_dataset = check_dataset_name(dataset) if dataset else None
    items: list[ReferenceItem] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        records = list(_records(path))
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, record in records:
        if isinstance(record, str):
            errors.append(f"line {number}: {record}")
            continue
        item, problem = _item(record, default_dataset or path.stem)
        if problem:
            errors.append(f"line {number}: {problem}")
            continue
        assert item is not None
        key = (item.dataset, item.item_id)
        if key in seen:
            errors.append(f"line {number}: duplicate item id {item.item_id!r} (first on line {seen[key]})")
            continue
        seen[key] = number
        items.append(item)
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise ReferenceFileError(f"{path}: {len(errors)} bad line(s), nothing loaded:\n  {shown}{more}")
    if not items:
        raise ReferenceFileError(f"{path}: no items (the file is empty)")
    return items


def _item(record: Mapping[str, Any], default_dataset: str) -> tuple[ReferenceItem | None, str]:
    reference_column, reference = _pick(record, "reference")
    if reference_column is None:
        return None, f"no reference; give one of {', '.join(ALIASES['reference'])}"
    if not reference.strip():
        return None, f"empty {reference_column!r}"
    _c, item_id = _pick(record, "item_id")
    _c, text = _pick(record, "input")
    _c, context = _pick(record, "context")
    _c, dataset = _pick(record, "dataset")
    if not item_id and not text:
        return None, "no item id and no input: give 'item_id' (or 'id') or 'input' so calls can be matched"
    if dataset:
        try:
            check_dataset_name(dataset)
        except ReferenceFileError as exc:
            return None, str(exc)
    used = {a for key in ALIASES for a in ALIASES[key] if a in record}
    metadata = {str(k): _text(v) for k, v in record.items() if k not in used and v not in (None, "")}
    return (
        ReferenceItem(
            dataset=dataset or default_dataset,
            item_id=item_id or input_id(text),
            reference=reference,
            input=text,
            context=context,
            metadata=metadata,
        ),
        "",
    )


@dataclass
class ReferenceIndex:
    """Items of one or more datasets, looked up by (dataset, id) or by exact input."""

    items: Sequence[ReferenceItem]
    by_id: dict[str, list[ReferenceItem]] = field(init=False)
    by_input: dict[str, list[ReferenceItem]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id, self.by_input = {}, {}
        for item in self.items:
            self.by_id.setdefault(item.item_id, []).append(item)
            if item.input:
                self.by_input.setdefault(item.input.strip(), []).append(item)

    def match(self, item_id: str = "", prompt: str = "", dataset: str = "") -> ReferenceItem | None:
        """The item a call answered: by id (and dataset when given), else by exact input; None if ambiguous."""
        candidates = self.by_id.get(item_id, []) if item_id else []
        if not candidates and prompt:
            candidates = self.by_input.get(prompt.strip(), [])
        if dataset:
            candidates = [c for c in candidates if c.dataset == dataset]
        return candidates[0] if len(candidates) == 1 else None
