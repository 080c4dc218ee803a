"""The sidecar's write-ahead log: what is acknowledged is on disk, replayed once, with its token."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.export.config import ConfigError
from llmpulse.agent.sidecar.config import build_sidecar_config
from llmpulse.agent.sidecar.otlp_decode import trace_rows
from llmpulse.agent.sidecar.wal import WalClosed, WriteAheadLog
from llmpulse.agent.store.insert import insert_batch
from llmpulse.agent.store.rows import Batch
from llmpulse.agent.store.schema import SchemaOptions, apply
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from .sidecar_harness import running_sidecar, wait_for
from .test_receiver import PROTOBUF, count, make_spans


def _rows(n: int, tag: str) -> Batch:
    payload = b"".join(f'["{tag}",{i}]\n'.encode() for i in range(n))
    return Batch("t", ["tag", "i"], payload, "", n)


def _recovered(directory: Path) -> list[Any]:
    """What a restart would replay (the log is opened, read and closed again)."""
    log = WriteAheadLog(str(directory))
    log.close()
    return log.recovered


def _logged(directory: Path, rows: list[Batch], **options: Any) -> tuple[WriteAheadLog, list[int]]:
    log = WriteAheadLog(str(directory), **options)
    seqs, future = log.append(rows)
    future.result(10)
    return log, seqs


@pytest.mark.parametrize("policy", ["always", "batch", "off"])
def test_appended_records_come_back_after_a_crash_and_released_ones_do_not(tmp_path: Path, policy: str) -> None:
    log, seqs = _logged(tmp_path / "wal", [_rows(3, "a"), _rows(2, "b"), _rows(4, "c")], fsync=policy)
    log.release([seqs[1]])
    log.close()  # the writer thread finishes; unreleased records stay
    again = WriteAheadLog(str(tmp_path / "wal"), fsync=policy)
    assert [(r.seqs, r.token, r.count) for r in again.recovered] == [([seqs[0]], None, 3), ([seqs[2]], None, 4)]
    assert again.recovered[0].load() == _rows(3, "a").payload
    assert again.recovered[1].load() == _rows(4, "c").payload
    new_seqs, future = again.append([_rows(1, "d")])
    future.result(10)
    assert new_seqs[0] > max(seqs), "sequence numbers never repeat while older records exist"
    again.close()


def test_a_sealed_batch_is_rebuilt_with_its_token_and_members_in_order(tmp_path: Path) -> None:
    log, seqs = _logged(tmp_path / "wal", [_rows(2, "x"), _rows(3, "y"), _rows(1, "z")])
    token = log.seal([seqs[2], seqs[0]])
    log.close()
    again = WriteAheadLog(str(tmp_path / "wal"))
    sealed = [r for r in again.recovered if r.token is not None]
    loose = [r for r in again.recovered if r.token is None]
    assert [(r.token, r.seqs, r.parts) for r in sealed] == [(token, [seqs[2], seqs[0]], (1, 2))]
    assert sealed[0].load() == _rows(1, "z").payload + _rows(2, "x").payload
    assert [r.seqs for r in loose] == [[seqs[1]]]
    again.release([seqs[0], seqs[2]])
    again.release([seqs[1]])
    again.close()
    assert _recovered(tmp_path / "wal") == []


def test_a_torn_tail_is_cut_and_what_came_before_is_kept(tmp_path: Path) -> None:
    log, seqs = _logged(tmp_path / "wal", [_rows(5, "keep")])
    log.close()
    segment = sorted((tmp_path / "wal").glob("*.wal"))[-1]
    whole = segment.stat().st_size
    with open(segment, "ab") as handle:  # what a SIGKILL in the middle of a write leaves
        handle.write(b"LWD\x00\x00\x10\x00garbage")
    again = WriteAheadLog(str(tmp_path / "wal"))
    assert [r.seqs for r in again.recovered] == [seqs]
    assert again.stats.torn_bytes_cut > 0 and segment.stat().st_size == whole
    again.close()


def test_a_corrupt_record_is_detected_by_its_checksum(tmp_path: Path) -> None:
    log, seqs = _logged(tmp_path / "wal", [_rows(2, "first")])
    _, future = log.append([_rows(2, "second")])
    future.result(10)
    log.close()
    segment = sorted((tmp_path / "wal").glob("*.wal"))[-1]
    blob = bytearray(segment.read_bytes())
    blob[-3] ^= 0xFF  # a flipped bit inside the last record's rows
    segment.write_bytes(bytes(blob))
    again = WriteAheadLog(str(tmp_path / "wal"))
    assert [r.seqs for r in again.recovered] == [seqs]
    again.close()


def test_files_are_private_and_settled_segments_are_deleted(tmp_path: Path) -> None:
    log = WriteAheadLog(str(tmp_path / "wal"), segment_bytes=4096)
    all_seqs = []
    for i in range(40):
        seqs, future = log.append([_rows(100, f"r{i}")])
        future.result(10)
        all_seqs += seqs
    segments = list((tmp_path / "wal").glob("*.wal"))
    assert len(segments) > 3, "segments rotate at segment_bytes"
    assert stat.S_IMODE(os.stat(tmp_path / "wal").st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in segments)
    log.release(all_seqs[:-1])
    tick, future = log.append([_rows(1, "tick")])  # the writer deletes after its next pass
    future.result(10)
    assert wait_for(lambda: len(list((tmp_path / "wal").glob("*.wal"))) <= 2)
    log.close()
    assert [r.seqs for r in _recovered(tmp_path / "wal")] == [[all_seqs[-1]], tick]


def test_the_size_cap_refuses_new_requests_but_an_empty_log_takes_anything(tmp_path: Path) -> None:
    log = WriteAheadLog(str(tmp_path / "wal"), max_bytes=1 << 20)
    assert log.has_room(5 << 20), "an empty log never refuses forever"
    seqs, future = log.append([Batch("t", ["x"], b"[1]\n" * 300_000, "", 300_000)])
    future.result(10)
    assert not log.has_room(1024)
    log.release(seqs)
    assert log.has_room(1024)
    log.close()
    with pytest.raises(WalClosed):
        log.append([_rows(1, "late")])


def test_bad_settings_are_refused_with_the_setting_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wal_fsync must be one of always, batch, off"):
        WriteAheadLog(str(tmp_path / "wal"), fsync="sometimes")
    with pytest.raises(ConfigError, match=r"wal_fsync \(from \$LLMPULSE_WAL_FSYNC\) must be one of always"):
        build_sidecar_config({}, environ={"LLMPULSE_WAL_FSYNC": "never"})
    with pytest.raises(ConfigError, match=r"durable \(from --durable\) must be true or false"):
        build_sidecar_config({"durable": "maybe"}, environ={})
    config = build_sidecar_config({"spool_dir": str(tmp_path / "data" / "spool")}, environ={})
    assert config.durable and config.wal_fsync == "batch" and config.wal_dir == str(tmp_path / "data" / "wal")
    yaml_file = tmp_path / "agent.yaml"
    yaml_file.write_text("wal_fsync: off\ndurable: false\n")  # YAML 1.1 reads a bare off as false
    config = build_sidecar_config({}, environ={}, config_file=str(yaml_file))
    assert config.wal_fsync == "off" and not config.durable


def test_a_repeated_insert_with_the_token_is_dropped_on_chdb_views_included(ch: Any, database: str) -> None:
    """What replay relies on: the same token and rows again are not stored twice, in llm_calls neither."""
    apply(ch, SchemaOptions(database=database))
    rows = trace_rows(encode_spans(make_spans(12)))
    batch = Batch(rows.table, rows.columns, rows.payload, "wal-test-1-1-1", rows.count)
    for _ in range(3):
        insert_batch(ch, database, batch)
    assert count(ch, database, "otel_traces") == 12
    assert count(ch, database, "llm_calls") == 11


def test_replay_after_a_crash_between_insert_and_release_stores_once(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    """A batch stored just before a crash, and a request logged but never sealed: each is stored exactly once."""
    apply(ch, SchemaOptions(database=database))
    stored = trace_rows(encode_spans(make_spans(10, service="stored-before-crash")))
    unsealed = trace_rows(encode_spans(make_spans(7, service="never-sealed")))
    log, seqs = _logged(tmp_path / "wal", [stored, unsealed])
    token = log.seal([seqs[0]])
    insert_batch(ch, database, Batch(stored.table, stored.columns, stored.payload, token, stored.count))
    log.close()  # the crash: the release of seqs[0] was never written
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        assert sidecar.sidecar.wal is not None
        assert wait_for(lambda: count(ch, database, "otel_traces") >= 17 and not sidecar.sidecar.wal.recovered)
        assert sidecar.flush()
    assert count(ch, database, "otel_traces", "ServiceName = 'stored-before-crash'") == 10
    assert count(ch, database, "otel_traces", "ServiceName = 'never-sealed'") == 7
    assert count(ch, database, "llm_calls") == 9 + 6


def test_acknowledged_requests_go_through_the_log_and_are_released_once_stored(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    body = encode_spans(make_spans(25)).SerializeToString()
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        log = sidecar.sidecar.wal
        assert log is not None and log.directory == str(tmp_path / "wal")
        for _ in range(4):
            assert sidecar.post("/v1/traces", body, PROTOBUF).status == 200
        assert log.stats.records >= 4 and log.stats.fsyncs >= 1
        assert sidecar.flush()
        assert wait_for(lambda: not log._where), "every record is released once its batch is stored"
    assert count(ch, database, "otel_traces") == 100
    assert _recovered(tmp_path / "wal") == []


def test_durable_off_answers_from_memory_and_writes_no_log(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    apply(ch, SchemaOptions(database=database))
    body = encode_spans(make_spans(5)).SerializeToString()
    with running_sidecar(store_dsn, database, tmp_path, durable=False) as sidecar:
        assert sidecar.sidecar.wal is None
        assert sidecar.post("/v1/traces", body, PROTOBUF).status == 200
        assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 5
    assert not (tmp_path / "wal").exists()


def test_a_failed_write_is_answered_as_failed_and_never_replayed(tmp_path: Path, monkeypatch: Any) -> None:
    """A disk error (here: fsync reporting EIO) fails the waiting request; the record is cut and marked void."""
    import errno

    from llmpulse.agent.sidecar import wal as wal_module

    log, kept = _logged(tmp_path / "wal", [_rows(2, "before")])
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(wal_module.os, "fsync", failing_fsync)
    _, future = log.append([_rows(3, "failed")])
    with pytest.raises(OSError, match="Input/output error"):
        future.result(10)
    monkeypatch.setattr(wal_module.os, "fsync", real_fsync)
    after, future = log.append([_rows(1, "after")])
    future.result(10)
    assert log.stats.write_errors == 1
    log.close()
    assert [r.seqs for r in _recovered(tmp_path / "wal")] == [kept, after]


def test_two_agents_never_share_one_log(tmp_path: Path) -> None:
    from llmpulse.agent.sidecar.wal import WalInUse

    first = WriteAheadLog(str(tmp_path / "wal"))
    with pytest.raises(WalInUse, match="in use by another llmpulse agent"):
        WriteAheadLog(str(tmp_path / "wal"))
    first.close()
    WriteAheadLog(str(tmp_path / "wal")).close()  # free again once the first one closed


def test_records_released_when_spooled_are_not_replayed_and_the_spool_keeps_the_token(
    store_dsn: str, database: str, tmp_path: Path, ch: Any
) -> None:
    """Store down: the batch goes to the spool (durable itself), its log records are released; after a
    restart the spool stores it once and the log replays nothing."""
    apply(ch, SchemaOptions(database=database))
    body = encode_spans(make_spans(30)).SerializeToString()
    ch.command(f"DETACH TABLE {database}.otel_traces")
    try:
        with running_sidecar(store_dsn, database, tmp_path) as sidecar:
            log = sidecar.sidecar.wal
            assert log is not None
            assert sidecar.post("/v1/traces", body, PROTOBUF).status == 200
            assert wait_for(lambda: sidecar.sidecar.pipeline.snapshot().spool_records == 30)
            assert wait_for(lambda: not log._where), "a spooled batch releases its log records"
            tokens = [p.read_bytes().partition(b"\n")[0] for p in (tmp_path / "spool").glob("*.batch.json")]
            assert len(tokens) == 1 and b'"token":"wal-' in tokens[0], "the spool keeps the sealed token"
    finally:
        ch.command(f"ATTACH TABLE {database}.otel_traces")
    assert _recovered(tmp_path / "wal") == []
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:
        assert wait_for(lambda: sidecar.sidecar.pipeline.snapshot().spool_records == 0)
        assert sidecar.flush()
    assert count(ch, database, "otel_traces") == 30
