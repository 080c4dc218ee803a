"""The export pipeline on the real embedded engine: round trip, outage and replay, dedup, spool cap."""

from __future__ import annotations

import os
import time

import pytest
from llmpulse.agent import feedback, observe
from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.export.spool import Spool
from llmpulse.agent.store.rows import Batch
from llmpulse.agent.store.schema import SchemaOptions
from llmpulse.agent.store.writer import ClickHouseWriter

from llmpulse import agent
from tests.agent.export.span_batches import spans_to_batch


def _count(ch, database: str, table: str, where: str = "1") -> int:
    return ch.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0]


def test_round_trip_through_chdb_and_materialized_view(configured, ch) -> None:
    db = configured["database"]

    @observe(prompt_template="t", prompt_version="v7", base_model="llama-3-8b", quantization="awq-int4")
    def ask(model: str, messages: list, temperature: float = 0.5, max_tokens: int = 100):
        return {
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "length"}],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 400},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        }

    @observe
    def chain() -> str:
        ask(model="gpt-4o", messages=[{"role": "user", "content": "meaning of life?"}], temperature=0.7, max_tokens=20)
        return "done"

    with agent.attributes(user_id="alice", session_id="sess-1"):
        chain()
    assert agent.flush()
    assert _count(ch, db, "otel_traces") == 2
    row = next(ch.query(f"SELECT * FROM {db}.llm_calls").named_results())
    assert row["RequestModel"] == "gpt-4o" and row["Provider"] == "openai" and row["Operation"] == "chat"
    assert row["InputTokens"] == 1000 and row["OutputTokens"] == 20
    assert row["CacheReadInputTokens"] == 400 and row["ReasoningOutputTokens"] == 5
    assert row["Temperature"] == 0.7 and row["MaxTokens"] == 20
    assert row["PromptVersion"] == "v7" and row["BaseModel"] == "llama-3-8b" and row["Quantization"] == "awq-int4"
    assert row["UserId"] == "alice" and row["SessionId"] == "sess-1"
    assert row["FinishReasons"] == ["length"]
    assert row["PromptText"] == "meaning of life?" and row["ResponseText"] == "42"
    # gpt-4o list price: 2.50 $/Mtok input, 1.25 cached, 10.00 output
    assert row["CostUSD"] == pytest.approx((600 * 2.5 + 400 * 1.25 + 20 * 10.0) / 1e6)
    assert row["ParentSpanId"] != ""
    trace = ch.query(
        f"SELECT TraceId, SpanKind, StatusCode, ResourceAttributes['service.name'] FROM {db}.otel_traces "
        "ORDER BY SpanKind"
    ).result_rows
    assert {r[1] for r in trace} == {"Client", "Internal"}
    assert {r[2] for r in trace} == {"Unset"} and {r[3] for r in trace} == {"test-svc"}
    assert len(trace[0][0]) == 32
    assert _count(ch, db, "otel_traces_trace_id_ts") == 1
    stored = ch.query(f"SELECT SpanAttributes FROM {db}.otel_traces WHERE SpanKind = 'Client'").result_rows[0][0]
    # attribute values as the collector's AsString() writes them
    assert stored["gen_ai.usage.input_tokens"] == "1000"
    assert stored["gen_ai.request.temperature"] == "0.7"
    assert stored["gen_ai.response.finish_reasons"] == '["length"]'


def test_feedback_lands_in_feedback_table(configured, ch) -> None:
    db = configured["database"]

    @observe
    def turn() -> str:
        feedback(name="thumbs", score=1, comment="great")
        return "x"

    turn()
    feedback(trace_id="a" * 32, label="wrong", user_id="reviewer")
    assert agent.flush()
    rows = ch.query(
        f"SELECT Name, Score, Label, Comment, length(TraceId), UserId FROM {db}.feedback ORDER BY Name"
    ).result_rows
    assert rows == [("thumbs", 1.0, "", "great", 32, ""), ("user_feedback", None, "wrong", "", 32, "reviewer")]


def test_feedback_rejects_bad_arguments(configured) -> None:
    with pytest.raises(ValueError, match="trace_id"):
        feedback(score=1)  # outside an observed call
    with pytest.raises(ValueError, match="32 hex"):
        feedback(trace_id="xyz", score=1)
    with pytest.raises(ValueError, match="at least one"):
        feedback(trace_id="a" * 32)
    with pytest.raises(ValueError, match="number"):
        feedback(trace_id="a" * 32, score="good")


def test_outage_spools_then_replays_every_record_exactly_once(configured, ch) -> None:
    db = configured["database"]

    @observe(kind="chain")
    def step(i: int) -> int:
        return i

    for i in range(50):
        step(i)
    assert agent.flush()
    ch.command(f"DETACH TABLE {db}.otel_traces")  # the store refuses writes: a real engine error
    try:
        for i in range(50, 350):
            step(i)
        assert agent.flush(20) is False, "nothing can reach the store while the table is detached"
        s = agent.stats()
        assert s.spooled == 300 and s.spool_records == 300 and s.exported == 50 and s.dropped == 0
        assert len(os.listdir(configured["spool_dir"])) >= 1
    finally:
        ch.command(f"ATTACH TABLE {db}.otel_traces")
    for i in range(350, 400):
        step(i)
    deadline = time.monotonic() + 30
    while not agent.flush(5) and time.monotonic() < deadline:
        time.sleep(0.2)
    s = agent.stats()
    # batches made while older ones waited in the spool went through the spool too, to keep order
    assert s.exported == 400 and s.replayed == s.spooled >= 300 and s.spool_records == 0 and s.dropped == 0
    rows = ch.query(
        f"SELECT toUInt32(SpanAttributes['llmpulse.input']::String = '') AS empty, count(), uniqExact(SpanId) "
        f"FROM {db}.otel_traces GROUP BY empty"
    ).result_rows
    assert rows == [(0, 400, 400)]
    seq = ch.query(
        f"SELECT JSONExtractInt(SpanAttributes['llmpulse.input'], 'i') AS i FROM {db}.otel_traces ORDER BY i"
    ).result_rows
    assert [r[0] for r in seq] == list(range(400)), "every record present exactly once"


def _span(i: int) -> FinishedSpan:
    return FinishedSpan(
        trace_id=i + 1,
        span_id=i + 1,
        parent_id=0,
        name="chat m",
        kind="Client",
        start_ns=time.time_ns(),
        end_ns=time.time_ns() + 1000,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "i": i},
    )


def test_insert_with_same_token_is_stored_once(ch, store_dsn, database) -> None:
    from llmpulse.agent.store.dsn import parse_dsn

    writer = ClickHouseWriter(parse_dsn(store_dsn, database=database), SchemaOptions(database=database))
    batch = spans_to_batch([_span(i) for i in range(10)], service_name="s", resource={}, scope_version="0")
    writer.insert(batch)
    writer.insert(batch)  # as after an insert whose reply was lost: replayed with its original token
    assert _count(ch, database, "otel_traces") == 10
    assert _count(ch, database, "llm_calls") == 10, "the materialized view is deduplicated too"
    other = spans_to_batch([_span(i) for i in range(10)], service_name="s", resource={}, scope_version="0")
    writer.insert(other)  # a new token: new data
    assert _count(ch, database, "otel_traces") == 20
    writer.close()


def test_spool_cap_drops_oldest_and_counts(tmp_path) -> None:
    spool = Spool(str(tmp_path), max_bytes=1024 * 1024, fsync=False)
    payload = b"x" * 300_000
    for index in range(8):
        spool.put(Batch("otel_traces", ["a"], payload, f"tok{index}", 300))
    assert spool.size_bytes() <= 1024 * 1024
    assert spool.dropped_records > 0 and spool.dropped_records % 300 == 0
    tokens = [spool.load(p).token for p in spool.files()]
    assert tokens == sorted(tokens) and tokens[-1] == "tok7", "the newest batches are kept, in order"


def test_spool_quarantines_unreadable_files_and_cleans_torn_writes(tmp_path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**7, fsync=False)
    spool.put(Batch("otel_traces", ["a"], b'{"a":1}\n', "t", 1))
    bad = tmp_path / "00000000000000000001-0000001-00000001-otel_traces-5.batch.json"
    bad.write_text("{not json")
    torn = tmp_path / "00000000000000000002-0000001-00000001-otel_traces-5.batch.json.999999999.tmp"
    torn.write_text("{")
    spool = Spool(str(tmp_path), max_bytes=10**7, fsync=False)
    assert not torn.exists()
    assert spool.load(str(bad)) is None
    assert (tmp_path / "dead" / bad.name).exists()
    assert len(spool.files()) == 1


def _parked_pipeline(store_dsn: str, database: str, tmp_path, **settings):
    """The SDK configured with batches of 10 and its worker and writer stopped, so nothing drains the queue."""
    agent.configure(
        store_dsn, database=database, spool_dir=str(tmp_path / "s"), batch_size=10, flush_interval=60, **settings
    )
    pipeline = agent._state.pipeline
    pipeline._stopping.set()
    pipeline._wake.set()
    pipeline._thread.join(5)
    return pipeline


@observe
def _observed() -> None:
    return None


def test_queue_full_drops_are_counted(store_dsn, database, tmp_path) -> None:
    _parked_pipeline(store_dsn, database, tmp_path, max_queue_size=10)
    try:
        for _ in range(25):
            _observed()
        s = agent.stats()
        assert s.queue_depth == 10 and s.dropped == 15 and s.dropped_by_reason == {"queue_full": 15}
    finally:
        agent.shutdown(1)


@pytest.mark.parametrize(
    ("waiting", "inserts"),
    [(15, [10, 5]), (50, [50]), (60, [50, 10])],
    ids=["shallow queue: batch_size", "five batches waiting: one insert", "backlog: one insert of five batches"],
)
def test_backlog_makes_larger_inserts(store_dsn, database, tmp_path, collector, waiting, inserts) -> None:
    """With at least five batches' worth of records waiting, one insert takes them all; side sinks still get
    ``batch_size`` chunks."""
    pipeline = _parked_pipeline(
        store_dsn, database, tmp_path, span_exporters=[lambda spans: collector.spans.append(len(spans))]
    )
    try:
        for _ in range(waiting):
            _observed()
        pipeline._drain(everything=True)  # by hand: the worker and the writer are parked
        batches = []
        while not pipeline.store_sink._batches.empty():
            batches.append(pipeline.store_sink._batches.get_nowait())
        assert [b.count for b in batches] == inserts  # (at most two batches: the writer's queue holds two)
        assert [bytes(b.payload).count(b"\n") for b in batches] == [b.count for b in batches]
        assert all(size <= 10 for size in collector.spans) and sum(collector.spans) == sum(inserts)
    finally:
        agent.shutdown(1)


def test_flush_waits_for_every_batch_made_before_it(tmp_path) -> None:
    """Regression: a flush that arrived mid-pass once returned while a batch was still on its way to the spool."""
    agent.configure("http://default:pw@127.0.0.1:1/db", spool_dir=str(tmp_path / "spool"), batch_size=500)
    try:

        @observe
        def f() -> int:
            return 1

        for round_size in (500, 1500, 2500):
            for _ in range(round_size):
                f()
            assert agent.flush(60) is False  # the store is down: not everything reached it
            s = agent.stats()
            assert s.spooled == s.enqueued == s.spool_records and s.queue_depth == 0 and s.dropped == 0
    finally:
        agent.shutdown(1)


def test_price_table_in_use_is_written_to_model_prices(store_dsn, database, tmp_path, ch) -> None:
    agent.configure(
        store_dsn,
        database=database,
        spool_dir=str(tmp_path / "s"),
        prices={"my-finetune": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
    )
    agent.shutdown()
    rows = dict(
        ch.query(f"SELECT Model, (InputPerMTok, OutputPerMTok, Source) FROM {database}.model_prices FINAL").result_rows
    )
    assert rows["my-finetune"] == (1.0, 2.0, "override")
    assert rows["gpt-4o"][0] > 0 and rows["gpt-4o"][2].startswith("vendored")
