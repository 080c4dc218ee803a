"""Does the embedded engine let other Python threads run while it inserts?

A Python thread counts loop turns, alone and then while the main thread inserts the pipeline's own
``otel_traces`` batches into chDB (the writer's path: clickhouse-connect ``raw_insert``, JSONCompactEachRow,
the pipeline's insert settings). If chDB held the GIL, the counter would stall during each insert.
Prints the counter's speed during inserts as a share of its speed alone, the longest stall, and the
process CPU (above 100 % means the engine and the counter ran at once).

    python bench/engine_gil.py [--rows 2000] [--inserts 20]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

from llmpulse.agent.enrich.span import FinishedSpan
from llmpulse.agent.export.encode import add_span_rows, span_batch
from llmpulse.agent.store.insert import INSERT_SETTINGS
from llmpulse.agent.store.rows import ROW_FORMAT, RowBuffer, new_token


class Counter(threading.Thread):
    """Counts loop turns and remembers the longest gap between two turns."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.turns = 0
        self.longest_gap = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        last = time.perf_counter()
        while not self.stop.is_set():
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now
            self.turns += 1


def counted(seconds: float | None, work=None) -> tuple[float, float, float]:
    """Turns per second of a counter thread while ``work`` runs (or for ``seconds``), its longest gap, CPU share."""
    counter = Counter()
    cpu, started = time.process_time(), time.perf_counter()
    counter.start()
    if work is None:
        time.sleep(seconds or 1.0)
    else:
        work()
    counter.stop.set()
    counter.join()
    elapsed = time.perf_counter() - started
    return counter.turns / elapsed, counter.longest_gap, (time.process_time() - cpu) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--inserts", type=int, default=20)
    args = parser.parse_args()

    from llmpulse.agent.store.dsn import parse_dsn
    from llmpulse.agent.store.schema import SchemaOptions, apply

    client = parse_dsn(f"chdb://{tempfile.mkdtemp(prefix='llmpulse-gil-')}").client()
    apply(client, SchemaOptions(database="gil"))
    now = time.time_ns()
    spans = [
        FinishedSpan(
            trace_id=i + 1,
            span_id=i + 1,
            parent_id=0,
            name="chat gpt-4o-mini",
            kind="Client",
            start_ns=now + i,
            end_ns=now + i + 1_000_000,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]',
            },
            is_llm=True,
        )
        for i in range(args.rows)
    ]
    rows = RowBuffer()
    add_span_rows(rows, spans, service_name="gil", resource={}, scope_version="0")
    batch = span_batch(rows)

    def inserts() -> None:
        for _ in range(args.inserts):
            client.raw_insert(
                "gil.otel_traces",
                column_names=batch.columns,
                insert_block=batch.payload,
                fmt=ROW_FORMAT,
                settings={**INSERT_SETTINGS, "insert_deduplication_token": new_token()},
            )

    alone, _, _ = counted(1.0)
    started = time.perf_counter()
    during, gap, cpu = counted(None, inserts)
    per_insert = (time.perf_counter() - started) / args.inserts
    print(f"{args.inserts} inserts of {args.rows} rows, {per_insert * 1000:.0f} ms each")
    print(f"counter thread during inserts: {during / alone:.0%} of its speed alone; longest stall {gap * 1000:.1f} ms")
    print(f"process CPU during inserts: {cpu:.0%} of one core")
    client.close()


if __name__ == "__main__":
    main()
