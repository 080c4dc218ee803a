"""Issue 10: a bounded fuzz of the receiver in CI, with the generator of ``bench/fuzz_receiver.py``.

Mutated protobuf, JSON and gzip bodies (bit flips, truncation, splices, trailing bytes, odd content
types and encodings, huge numbers, times past what the store holds, NaN, deep nesting) go to a real
sidecar on 127.0.0.1: no 5xx, the agent stays up, and the spans stored equal the spans of the requests
answered 200 (those older than the TTL counted apart). The bench runs the same with 10,000 bodies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.store.schema import SchemaOptions, apply

from .sidecar_harness import running_sidecar

BENCH = Path(__file__).resolve().parents[3] / "bench" / "fuzz_receiver.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_receiver_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [3, 11])
def test_fuzzed_bodies_get_no_5xx_and_every_acknowledged_span_is_stored(
    store_dsn: str, database: str, tmp_path: Path, ch: Any, seed: int
) -> None:
    fuzz = _bench()
    apply(ch, SchemaOptions(database=database))
    with running_sidecar(store_dsn, database, tmp_path) as sidecar:

        def post(body: bytes, headers: dict[str, str]) -> int:
            return sidecar.post("/v1/traces", body, headers).status

        figures = fuzz.fuzz(post, 200, seed)
        assert sidecar.get("/healthz").status == 200
        assert sidecar.flush()
        assert sidecar.sidecar.pipeline.snapshot().dropped == 0
    statuses = {int(code) for code in figures["statuses"]}
    assert max(statuses) < 500, figures  # not even a 503: a few hundred small bodies never fill the queue
    assert {200, 400, 415} <= statuses  # the generator reaches each outcome
    stored, stored_past_ttl = fuzz.stored_spans(ch, database)
    assert stored == figures["acknowledged_spans"] - figures["acknowledged_spans_past_ttl"], figures
    assert stored_past_ttl <= figures["acknowledged_spans_past_ttl"]
    assert not list((tmp_path / "spool").glob("dead/*")), "the store refused rows the decoder accepted"
