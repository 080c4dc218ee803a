"""read_calls samples by hash cut-off: same rows as a full sort, deterministic, sized, filters in SQL, values bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llmpulse.agent.store.dsn import EMBEDDED_SETTINGS
from llmpulse.analyzers.framework.results import NOT_ENOUGH_DATA
from llmpulse.analyzers.framework.runner import run_analyzer
from llmpulse.analyzers.framework.windows import windows
from llmpulse.analyzers.hallucination.signals import context_from_messages
from llmpulse.analyzers.io.store import (
    _FILTER_PARAMETERS,
    ROW_FILTERS,
    AnalysisStore,
    hash_cut,
    sample_share,
)

from tests.analyzers.framework_helpers import NOW, call_row, create_schema, insert_calls, minutes

WINDOW, REFERENCE = windows("1h", "1h", end=NOW)


class SpyClient:
    """A client that records each query's SQL, parameters and row count (to see what was read)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.queries: list[tuple[str, dict[str, Any], int]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        result = self.client.query(sql, parameters=parameters, **kwargs)
        self.queries.append((sql, dict(parameters or {}), len(result.result_rows)))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.fixture
def store(ch, database) -> AnalysisStore:
    create_schema(ch, database)
    rows = []
    for i in range(600):  # 400 calls of model a, 200 of b, in the current hour; a third without a prompt
        rows.append(
            call_row(
                NOW - minutes(0.05 + i * 0.09),
                i,
                model="a" if i % 3 else "b",
                prompt="" if i % 3 == 1 else f"question {i}",
                response=f"answer {i}",
            )
        )
    insert_calls(ch, database, rows)
    return AnalysisStore(ch, database)


def full_sort_sample(ch, database: str, cap: int, seed: int, extra: str = "") -> set[str]:
    """The sample as the old query took it: sort the whole window by the hash, LIMIT n BY segment."""
    rows = ch.query(
        "SELECT SpanId FROM {db:Identifier}.llm_calls WHERE Timestamp >= fromUnixTimestamp64Nano({start:Int64}) "
        f"AND Timestamp < fromUnixTimestamp64Nano({{end:Int64}}) {extra} "
        "ORDER BY cityHash64(SpanId, {seed:UInt64}), SpanId LIMIT {cap:UInt64} BY RequestModel",
        parameters={
            "db": database,
            "start": int(WINDOW.start.timestamp() * 1e9),
            "end": int(WINDOW.end.timestamp() * 1e9),
            "seed": seed,
            "cap": cap,
        },
    ).result_rows
    return {r[0] for r in rows}


def test_the_sample_is_the_full_sorts_sample_and_deterministic_for_a_seed(ch, database, store) -> None:
    for seed in (0, 7):
        sample = store.read_calls(WINDOW, ["SpanId"], segment_by=["model"], limit_per_segment=50, seed=seed)
        assert sample.groupby("RequestModel").size().to_dict() == {"a": 50, "b": 50}
        assert set(sample["SpanId"]) == full_sort_sample(ch, database, 50, seed)
        again = store.read_calls(WINDOW, ["SpanId"], segment_by=["model"], limit_per_segment=50, seed=seed)
        assert again["SpanId"].tolist() == sample["SpanId"].tolist()  # same rows, same (hash) order
    other = store.read_calls(WINDOW, ["SpanId"], segment_by=["model"], limit_per_segment=50, seed=1)
    assert set(other["SpanId"]) != set(sample["SpanId"])


def test_a_small_segment_is_read_whole_and_a_cap_without_segments_holds(store) -> None:
    sample = store.read_calls(WINDOW, ["SpanId"], segment_by=["model"], limit_per_segment=300)
    assert sample.groupby("RequestModel").size().to_dict() == {"a": 300, "b": 200}
    assert len(store.read_calls(WINDOW, ["SpanId"], limit_per_segment=123)) == 123
    assert len(store.read_calls(REFERENCE, ["SpanId"], segment_by=["model"], limit_per_segment=10)) == 0


def test_the_sample_reads_little_more_than_its_size(ch, database, store) -> None:
    spy = SpyClient(ch)
    AnalysisStore(spy, database).read_calls(WINDOW, ["SpanId", "PromptText"], segment_by=["model"], limit_per_segment=5)
    counted, sampled = spy.queries
    assert "count()" in counted[0] and counted[2] == 2  # one narrow count per segment
    assert "PREWHERE" in sampled[0] and sampled[2] == 10
    # the cut-off keeps about cap + 6 sqrt(cap) + 20 of each segment, not the whole window
    assert sample_share(400, 5) == pytest.approx((5 + 6 * 5**0.5 + 20) / 400)
    assert hash_cut(1.0) == 2**64 - 1 and hash_cut(0.5) == 2**63


def test_a_text_filter_that_drops_rows_widens_the_cut_off_until_the_cap_is_met(ch, database, store) -> None:
    sample = store.read_calls(
        WINDOW, ["SpanId", "PromptText"], segment_by=["model"], require_text=["PromptText"], limit_per_segment=150
    )
    assert sample.groupby("RequestModel").size().to_dict() == {"a": 150, "b": 150}
    assert (sample["PromptText"] != "").all()
    assert set(sample["SpanId"]) == full_sort_sample(ch, database, 150, 0, "AND PromptText != ''")


def test_segment_values_and_filters_are_bound_parameters(ch, database, store) -> None:
    hostile = "a' OR 1=1 --"
    insert_calls(ch, database, [call_row(NOW - minutes(1), 10_000, model=hostile, prompt="p", response="r")])
    spy = SpyClient(ch)
    spied = AnalysisStore(spy, database)
    only = spied.read_calls(WINDOW, ["SpanId", "RequestModel"], segment={"model": hostile}, limit_per_segment=5)
    assert only["RequestModel"].tolist() == [hostile]
    spied.read_calls(WINDOW, ["SpanId"], segment_by=["model"], require_any=["context"], limit_per_segment=5)
    assert all(hostile not in sql and "<context" not in sql.lower() for sql, _, _ in spy.queries)
    with pytest.raises(ValueError, match="require_any takes"):
        store.read_calls(WINDOW, require_any=["1=1"])


MESSAGES = [
    ("<context>The tower is 330 m tall.</context> How tall is it?", True),
    ("Context: The tower is 330 m tall.\nQuestion: how tall?", True),
    ("## Retrieved documents:\n1. A passage\nQuestion: what?", True),
    ("<documents>one</documents>", True),
    ("What is the capital of France?", False),
    ("Please give me some context on the French revolution", False),
]


@pytest.mark.parametrize(("text", "has_context"), MESSAGES)
def test_the_context_filter_keeps_every_call_whose_messages_carry_context(ch, text: str, has_context: bool) -> None:
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    assert bool(context_from_messages(messages)) == has_context
    matched = ch.query(
        "SELECT match({m:String}, {context_pattern:String})", parameters={"m": messages, **_FILTER_PARAMETERS}
    ).result_rows[0][0]
    if has_context:  # the SQL filter is a superset: it never drops a call with context
        assert matched
    else:
        assert not matched
    assert set(ROW_FILTERS) == {"context", "choices", "logprobs"}


def test_hallucination_on_a_window_without_context_reads_no_text(ch, database, store) -> None:
    spy = SpyClient(ch)
    results = run_analyzer(
        "hallucination", AnalysisStore(spy, database), WINDOW, REFERENCE, {"embeddings": False}, write=False
    )
    if results and results[0].status == "error" and "hallucination model" in results[0].summary:
        pytest.skip(f"the bundled hallucination model does not load here: {results[0].summary[:120]}")
    assert results and all(r.status == NOT_ENOUGH_DATA for r in results)
    reads = [n for sql, _, n in spy.queries if "llm_calls" in sql and "ResponseText" in sql.split("FROM")[0]]
    assert reads and all(n == 0 for n in reads)  # the texts of unscorable calls never left the engine


def test_the_embedded_store_spills_big_sorts_and_aggregations(ch) -> None:
    got = ch.query(
        "SELECT getSetting('max_bytes_before_external_sort'), getSetting('max_bytes_before_external_group_by')"
    ).result_rows[0]
    assert list(got) == [EMBEDDED_SETTINGS["max_bytes_before_external_sort"]] * 2


def test_require_any_keeps_only_scorable_calls_in_sql(ch, database, store) -> None:
    query = {"segment_by": ["model"], "require_text": ["ResponseText"], "limit_per_segment": 50}
    spy = SpyClient(ch)
    spied = AnalysisStore(spy, database)
    none = spied.read_calls(WINDOW, ["SpanId", "ResponseText"], require_any=["context", "choices", "logprobs"], **query)
    assert len(none) == 0 and spy.queries[-1][2] == 0  # no context anywhere: no text came back
    with_context = [
        call_row(NOW - minutes(2), 20_000 + k, model="a", prompt="q", response="r", Context="the passage")
        for k in range(3)
    ]
    insert_calls(ch, database, with_context)
    found = store.read_calls(WINDOW, ["SpanId", "Context"], require_any=["context"], **query)
    assert sorted(found["SpanId"]) == sorted(r["SpanId"] for r in with_context)
