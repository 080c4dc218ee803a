"""Golden datasets: parsing JSONL and CSV, the errors a user sees, and ``llmpulse references`` on the store."""

from __future__ import annotations

import json

import pytest
from llmpulse.agent.cli import main
from llmpulse.analyzers.io.references import read_items
from llmpulse.analyzers.quality.references import (
    ReferenceFileError,
    ReferenceIndex,
    ReferenceItem,
    input_id,
    parse_file,
)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_with_aliases_metadata_and_derived_ids(tmp_path) -> None:
    path = _write(
        tmp_path / "faq.jsonl",
        [
            json.dumps(
                {"id": "q1", "question": "Opening hours?", "answer": "9 to 5.", "knowledge": ["Doc A", "Doc B"]}
            ),
            "",
            json.dumps({"input": "Refunds?", "expected": "Within 30 days.", "topic": "billing", "level": 2}),
        ],
    )
    items = parse_file(path)
    assert items == [
        ReferenceItem("faq", "q1", "9 to 5.", "Opening hours?", "Doc A\n\nDoc B", {}),
        ReferenceItem(
            "faq", input_id("Refunds?"), "Within 30 days.", "Refunds?", "", {"topic": "billing", "level": "2"}
        ),
    ]
    assert parse_file(path, dataset="support")[0].dataset == "support"


def test_csv_with_a_dataset_column(tmp_path) -> None:
    path = _write(
        tmp_path / "golden.csv", ["item_id,input,reference,dataset", 'a,"Hi, there",Hello,greet', "b,Bye,Goodbye,greet"]
    )
    items = parse_file(path)
    assert [(i.dataset, i.item_id, i.input, i.reference) for i in items] == [
        ("greet", "a", "Hi, there", "Hello"),
        ("greet", "b", "Bye", "Goodbye"),
    ]


@pytest.mark.parametrize(
    ("name", "lines", "message"),
    [
        (
            "bad.jsonl",
            ['{"id": "1", "reference": "a"}', "{not json", "[1, 2]"],
            r"line 2: not valid JSON.*\n  line 3: expected a JSON object",
        ),
        ("bad.jsonl", ['{"id": "1", "output": "a"}'], "line 1: no reference; give one of reference, expected"),
        ("bad.jsonl", ['{"id": "1", "reference": "  "}'], "line 1: empty 'reference'"),
        ("bad.jsonl", ['{"reference": "a"}'], "line 1: no item id and no input"),
        (
            "bad.jsonl",
            ['{"id": "1", "reference": "a"}', '{"id": "1", "reference": "b"}'],
            r"line 2: duplicate item id '1' \(first on line 1\)",
        ),
        ("bad.jsonl", ['{"id": "1", "reference": "a", "dataset": "no spaces allowed"}'], "line 1: bad dataset name"),
        ("bad.csv", ["id,output", "1,a"], "no reference column; the header has id, output"),
        ("bad.csv", ["id,reference", "1,a,extra"], "line 2: 3 fields but the header has 2"),
        ("empty.jsonl", [""], "no items"),
        ("data.txt", ["x"], "unsupported file type '.txt'"),
    ],
)
def test_bad_files_are_refused_with_line_numbers(tmp_path, name, lines, message) -> None:
    with pytest.raises(ReferenceFileError, match=message):
        parse_file(_write(tmp_path / name, lines))


def test_missing_file_and_many_errors_are_summarised(tmp_path) -> None:
    with pytest.raises(ReferenceFileError, match=r"file not found: .*nope\.jsonl"):
        parse_file(tmp_path / "nope.jsonl")
    path = _write(tmp_path / "many.jsonl", ["{bad"] * 14)
    with pytest.raises(ReferenceFileError, match=r"(?s)14 bad line\(s\), nothing loaded.*and 4 more"):
        parse_file(path)


def test_index_matches_by_id_then_exact_input_and_refuses_ambiguity() -> None:
    index = ReferenceIndex(
        [
            ReferenceItem("a", "1", "r1", "Hello?"),
            ReferenceItem("b", "1", "r2", "Bye?"),
            ReferenceItem("a", "2", "r3", "Hi?"),
        ]
    )
    assert index.match(item_id="1") is None  # two datasets share id 1
    assert index.match(item_id="1", dataset="b").reference == "r2"
    assert index.match(prompt="  Hi? ").item_id == "2"
    assert index.match(item_id="zzz", prompt="Bye?").reference == "r2"
    assert index.match(prompt="unknown") is None


def test_cli_loads_lists_and_keeps_what_was_stored_when_a_file_is_bad(tmp_path, store_dsn, database, capsys) -> None:
    from llmpulse.agent.store.dsn import parse_dsn

    good = _write(
        tmp_path / "faq.jsonl",
        [json.dumps({"id": f"q{i}", "input": f"Q{i}?", "reference": f"A{i}."}) for i in range(3)],
    )
    assert main(["references", "load", str(good), "--dsn", store_dsn, "--database", database]) == 0
    assert "loaded 3 reference item(s) into faq" in capsys.readouterr().out

    bad = _write(tmp_path / "faq2.jsonl", [json.dumps({"id": "q0", "reference": "changed"}), "{oops"])
    assert main(["references", "load", str(bad), "--dataset", "faq", "--dsn", store_dsn, "--database", database]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmpulse: error: ") and "line 2: not valid JSON" in err and "nothing loaded" in err
    assert main(["references", "load", str(tmp_path / "missing.csv"), "--dsn", store_dsn, "--database", database]) == 2
    assert "file not found" in capsys.readouterr().err

    update = _write(tmp_path / "more.jsonl", [json.dumps({"id": "q0", "input": "Q0?", "reference": "New A0."})])
    assert (
        main(["references", "load", str(update), "--dataset", "faq", "--dsn", store_dsn, "--database", database]) == 0
    )
    client = parse_dsn(store_dsn, database=database).client()
    items = {i.item_id: i.reference for i in read_items(client, database, "faq")}
    assert items == {"q0": "New A0.", "q1": "A1.", "q2": "A2."}
    capsys.readouterr()
    assert main(["references", "list", "--dsn", store_dsn, "--database", database]) == 0
    assert capsys.readouterr().out.startswith("faq\t3 item(s)")
