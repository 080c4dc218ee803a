"""Issue 10, defects 1, 2, 7 and 11: the writer isolates refused rows, never discards a batch on an error,
keeps ``dead/`` under the cap and writes owner-only files. Faults are injected into the real pipeline on
the real embedded engine; every test checks that the counts add up to what was submitted."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.export.delivery import split_refused
from llmpulse.agent.export.spool import Spool
from llmpulse.agent.store.rows import Batch

from llmpulse import agent
from tests.agent.export.span_batches import spans_to_batch

_BAD_TIMESTAMP = b'"99999999999.000000000"'  # after 2262-04-11: DateTime64(9) refuses it (Code 41)
_next_id = iter(range(1, 10**9))


def _rows(count: int, *, bad: frozenset[int] | set[int] = frozenset(), pad: int = 0) -> Batch:
    """``count`` span rows for otel_traces (``pad`` bytes of attribute each); the rows at the indexes in
    ``bad`` have a timestamp the store refuses."""
    now = time.time_ns()
    spans = []
    for _ in range(count):
        ident = next(_next_id)
        spans.append(
            FinishedSpan(
                trace_id=ident,
                span_id=ident,
                parent_id=0,
                name="n",
                kind="Client",
                start_ns=now,
                end_ns=now + 1000,
                attributes={"pad": "x" * pad} if pad else {},
            )
        )
    batch = spans_to_batch(spans, service_name="s", resource={}, scope_version="0")
    lines = bytes(batch.payload).split(b"\n")[:-1]
    for index in bad:
        good_ts = lines[index][1 : lines[index].index(b",")]
        lines[index] = lines[index].replace(good_ts, _BAD_TIMESTAMP, 1)
    batch.payload = b"".join(line + b"\n" for line in lines)
    return batch


class Faults:
    """Named faults switched on and off by the test; a wrapped method raises while its fault is on."""

    def __init__(self) -> None:
        self.on: dict[str, BaseException] = {}
        self.hits: dict[str, int] = {}

    def wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            fault = self.on.get(name)
            if fault is not None:
                self.hits[name] = self.hits.get(name, 0) + 1
                raise fault
            return method(*args, **kwargs)

        return wrapped


EMFILE = OSError(errno.EMFILE, "Too many open files")
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def pipeline(store_dsn: str, database: str, tmp_path: Path) -> Iterator[Any]:
    agent.configure(
        store_dsn, database=database, spool_dir=str(tmp_path / "spool"), flush_interval=0.05, batch_size=10_000
    )
    yield agent._state.pipeline
    agent.shutdown(5)


@pytest.fixture
def faults(pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> Faults:
    injected = Faults()
    spool, writer = pipeline.store_sink.spool, pipeline.store_sink.writer
    for name in ("pending", "put", "load", "files"):
        monkeypatch.setattr(spool, name, injected.wrap(f"spool.{name}", getattr(spool, name)))
    monkeypatch.setattr(writer, "insert", injected.wrap("insert", writer.insert))
    return injected


def _stored(ch: Any, database: str) -> int:
    return ch.query(f"SELECT count() FROM {database}.otel_traces").result_rows[0][0]


def _accounted(pipeline: Any) -> int:
    s = pipeline.snapshot()
    return s.exported + s.dropped + s.spool_records + s.held


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _dead_rows(spool_dir: Path) -> int:
    dead = spool_dir / "dead"
    if not dead.is_dir():
        return 0
    return sum(int(name.split("-")[-1].split(".")[0]) for name in os.listdir(dead) if name.endswith(".batch.json"))


# --- defect 1: one client's bad row takes only itself to dead/ ------------------------------------------


def test_a_refused_row_goes_to_dead_alone_and_the_other_clients_rows_are_stored(pipeline, ch, database, tmp_path):
    first, bad_client, last = _rows(100), _rows(5, bad={2}), _rows(50)
    assert pipeline.submit_rows([first, bad_client, last])  # one call: joined into one insert
    assert agent.flush(30)
    assert _stored(ch, database) == 154
    s = pipeline.snapshot()
    assert s.exported == 154 and s.dropped_by_reason == {"rejected_by_store": 1}
    assert _dead_rows(tmp_path / "spool") == 1
    dead = next((tmp_path / "spool" / "dead").iterdir()).read_bytes()
    reason = dead.partition(b"\n")[0]  # "Decimal math overflow ... key Timestamp" (the rows' basic time parser)
    assert b"Code: 407" in reason and b"Timestamp" in reason, "the dead file keeps the store's reason"
    assert _BAD_TIMESTAMP in dead


def test_bad_rows_inside_one_request_are_found_by_halving(pipeline, ch, database, tmp_path):
    assert pipeline.submit_rows([_rows(40, bad={0, 17, 39})])
    assert agent.flush(30)
    assert _stored(ch, database) == 37
    assert pipeline.snapshot().dropped_by_reason == {"rejected_by_store": 3}
    assert _dead_rows(tmp_path / "spool") == 3
    assert _accounted(pipeline) == 40


def test_split_parts_keep_deterministic_tokens_so_a_second_split_is_deduplicated(ch, database, store_dsn):
    batch = _rows(6, bad={4})
    batch.parts = (2, 4)
    parts = split_refused(batch)
    assert [(p.count, p.token) for p in parts] == [(2, f"{batch.token}:0"), (4, f"{batch.token}:1")]
    assert [p.token for p in split_refused(parts[1])] == [f"{batch.token}:1:0", f"{batch.token}:1:1"]
    assert [(p.count, p.token) for p in split_refused(batch)] == [(p.count, p.token) for p in parts]
    assert split_refused(_rows(1)) == []


def test_a_refused_spooled_batch_is_split_on_replay(pipeline, faults, ch, database, tmp_path):
    faults.on["insert"] = ConnectionError("store down")
    assert pipeline.submit_rows([_rows(30, bad={3}), _rows(20)])
    assert _until(lambda: pipeline.snapshot().spool_records == 50)
    del faults.on["insert"]
    assert _until(lambda: agent.flush(5))
    assert _stored(ch, database) == 49
    s = pipeline.snapshot()
    assert s.dropped_by_reason == {"rejected_by_store": 1} and s.spool_records == 0 and s.exported == 49
    assert _dead_rows(tmp_path / "spool") == 1


# --- defect 2: nothing discarded when a step fails --------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["spool.pending", "spool.files", "insert"],
    ids=["EMFILE listing the spool before an insert", "EMFILE in the replay", "EMFILE in the insert"],
)
def test_emfile_at_a_step_loses_nothing(pipeline, faults, ch, database, fault):
    faults.on[fault] = EMFILE
    assert pipeline.submit_rows([_rows(20)])
    assert _until(lambda: faults.hits.get(fault, 0) > 0 and _accounted(pipeline) == 20)
    del faults.on[fault]
    assert _until(lambda: agent.flush(5))
    assert _stored(ch, database) == 20
    s = pipeline.snapshot()
    assert s.exported == 20 and s.dropped == 0 and s.spool_records == 0


def test_a_full_disk_while_the_store_is_down_holds_the_batch_until_one_of_them_recovers(pipeline, faults, ch, database):
    faults.on["insert"] = ConnectionError("store down")
    faults.on["spool.put"] = ENOSPC
    assert pipeline.submit_rows([_rows(25)])
    assert _until(lambda: pipeline.snapshot().held == 25), "held in memory, not discarded"
    assert pipeline.snapshot().dropped == 0 and _accounted(pipeline) == 25
    del faults.on["spool.put"]  # disk freed: the held batch goes to the spool
    assert _until(lambda: pipeline.snapshot().spool_records == 25)
    del faults.on["insert"]
    assert _until(lambda: agent.flush(5))
    assert _stored(ch, database) == 25
    s = pipeline.snapshot()
    assert s.exported == 25 and s.dropped == 0 and s.held == 0


def test_rows_neither_stored_nor_spooled_at_shutdown_are_counted(pipeline, faults, ch, database):
    faults.on["insert"] = ConnectionError("store down")
    faults.on["spool.put"] = ENOSPC
    assert pipeline.submit_rows([_rows(15)])
    assert _until(lambda: pipeline.snapshot().held == 15)
    agent.shutdown(5)
    s = pipeline.snapshot()
    assert s.dropped_by_reason == {"spool_write_failed": 15} and s.exported == 0 and s.held == 0


def test_a_held_batch_from_the_write_ahead_log_is_left_there_at_shutdown(pipeline, faults):
    settled = threading.Event()
    batch = _rows(10)
    batch.on_settled = settled.set
    faults.on["insert"] = ConnectionError("store down")
    faults.on["spool.put"] = ENOSPC
    assert pipeline.submit_rows([batch])
    assert _until(lambda: pipeline.snapshot().held == 10)
    agent.shutdown(5)
    assert not settled.is_set(), "not released: the log replays it at the next start"
    assert pipeline.snapshot().dropped == 0


def test_a_batch_is_settled_once_when_stored_spooled_or_filed(pipeline, faults):
    calls: list[str] = []
    stored, spooled, refused = _rows(5), _rows(5), _rows(4, bad={1})
    stored.on_settled = lambda: calls.append("stored")
    refused.on_settled = lambda: calls.append("refused")
    assert pipeline.submit_rows([stored])
    assert agent.flush(10)
    assert pipeline.submit_rows([refused])
    assert agent.flush(10)
    faults.on["insert"] = ConnectionError("store down")
    spooled.on_settled = lambda: calls.append("spooled")
    assert pipeline.submit_rows([spooled])
    assert _until(lambda: "spooled" in calls)
    assert calls == ["stored", "refused", "spooled"]


def test_a_replay_that_cannot_open_a_file_leaves_it_in_the_spool(pipeline, faults, ch, database, tmp_path):
    faults.on["insert"] = ConnectionError("store down")
    assert pipeline.submit_rows([_rows(12)])
    assert _until(lambda: pipeline.snapshot().spool_records == 12)
    del faults.on["insert"]
    faults.on["spool.load"] = EMFILE
    assert _until(lambda: faults.hits.get("spool.load", 0) >= 1)
    assert pipeline.snapshot().spool_records == 12 and _dead_rows(tmp_path / "spool") == 0, "not quarantined"
    del faults.on["spool.load"]
    assert _until(lambda: agent.flush(5))
    assert _stored(ch, database) == 12 and pipeline.snapshot().dropped == 0


def test_a_dead_letter_write_failure_is_counted_and_the_good_rows_stored(pipeline, faults, ch, database):
    original = Spool.put

    def put(self: Spool, batch: Batch, *, dead: bool = False, reason: str = "") -> str:
        if dead:
            raise ENOSPC
        return original(self, batch, dead=dead, reason=reason)

    pipeline.store_sink.spool.put = put.__get__(pipeline.store_sink.spool)
    assert pipeline.submit_rows([_rows(10, bad={5})])
    assert agent.flush(30)
    assert _stored(ch, database) == 9
    assert pipeline.snapshot().dropped_by_reason == {"rejected_by_store": 1}


# --- defect 7: dead/ under the cap -------------------------------------------------------------------


def test_dead_letters_stay_under_the_spool_cap_oldest_out_and_counted(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=1024 * 1024, fsync=False)
    payload = b"x" * 100_000 + b"\n"
    for index in range(40):
        spool.put(Batch("otel_traces", ["a"], payload, f"tok{index}", 1), dead=True, reason="bad")
    dead = tmp_path / "dead"
    assert sum(f.stat().st_size for f in dead.iterdir()) <= 1024 * 1024
    assert spool.dead_evicted_records == 40 - len(list(dead.iterdir())) > 0
    assert spool.dropped_records == 0, "evicting dead letters is not a drop of pending rows"


def test_pipeline_counts_dead_letter_evictions(store_dsn, database, tmp_path, ch):
    agent.configure(
        store_dsn, database=database, spool_dir=str(tmp_path / "s"), flush_interval=0.05, spool_max_bytes=1 << 20
    )
    pipeline = agent._state.pipeline
    try:
        for _ in range(12):
            assert pipeline.submit_rows([_rows(1, bad={0}, pad=100_000)])
            assert agent.flush(60)
        s = pipeline.snapshot()
        dead = tmp_path / "s" / "dead"
        assert sum(f.stat().st_size for f in dead.iterdir()) <= 1 << 20
        assert s.dropped_by_reason == {"rejected_by_store": 12}
        assert s.dead_letter_evicted == 12 - _dead_rows(tmp_path / "s") > 0
    finally:
        agent.shutdown(5)


# --- defect 11: owner-only files --------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_spool_and_dead_letter_files_are_owner_only(tmp_path):
    old = tmp_path / "spool"
    old.mkdir(mode=0o755)
    legacy = old / "00000000000000000001-0000001-00000001-otel_traces-1.batch.json"
    legacy.write_bytes(b'{"format":1}\n')
    legacy.chmod(0o644)
    spool = Spool(str(old), max_bytes=10**7, fsync=False)
    assert _mode(old) == 0o700 and _mode(legacy) == 0o600, "an older spool is tightened"
    path = Path(spool.put(Batch("otel_traces", ["a"], b'{"a":1}\n', "t", 1)))
    dead = Path(spool.put(Batch("otel_traces", ["a"], b'{"a":1}\n', "u", 1), dead=True))
    assert _mode(path) == 0o600 and _mode(dead) == 0o600 and _mode(dead.parent) == 0o700


# --- defect 13, behind the receiver: encoded rows are capped in bytes -----------------------------------


def test_encoded_rows_are_refused_past_the_byte_cap_but_never_forever(store_dsn, database, tmp_path, monkeypatch):
    from llmpulse.agent.export import intake as pipeline_module

    agent.configure(store_dsn, database=database, spool_dir=str(tmp_path / "s"), flush_interval=60)
    pipeline = agent._state.pipeline
    pipeline._stopping.set()  # park the worker: nothing drains the queue
    pipeline._wake.set()
    pipeline._thread.join(5)
    monkeypatch.setattr(pipeline_module, "_MAX_QUEUE_BYTES", 3000)
    try:
        pipeline._stopping.clear()
        big = _rows(3, pad=2000)
        assert len(big.payload) > 3000
        assert pipeline.has_room(3, len(big.payload)) and pipeline.submit_rows([big]), "an empty queue takes it"
        small = _rows(1)
        assert not pipeline.has_room(1, len(small.payload)) and not pipeline.submit_rows([small])
        assert pipeline.submit_rows([small], force=True), "rows from the write-ahead log are never refused"
        assert pipeline.snapshot().dropped == 0
    finally:
        agent.shutdown(1)
