"""Ingest throughput: the whole pipeline into chDB versus a raw clickhouse-connect insert of the same rows.

Pipeline: N calls of an ``@observe``-decorated function returning an OpenAI-shaped completion, through
the queue, enrichment, row building and column-oriented inserts into ``otel_traces`` (and its
materialized views), timed from the first call until ``flush()`` returns. The pipeline runs with its
default settings (queue of 20,000); the producer offers load as fast as the queue accepts it (it pauses
for a millisecond when the queue is nearly full), which measures the sustained rate without drops.
Raw: the identical rows, pre-built and pivoted (not timed), inserted column-oriented with
clickhouse-connect's ``insert`` in batches of the same size into a second database with the same
schema (same views). The pipeline itself sends JSONCompactEachRow built with orjson (``raw_insert``).
Prints records/s and the ratio. Target: pipeline/raw >= 0.5.

Under backlog the pipeline joins up to five batches' worth of waiting records into one insert, so its
inserts can be larger than ``--batch-size``. For comparison the raw insert is also timed at the
pipeline's own mean insert size, into a third database; that ratio is printed too.

    python bench/ingest.py [--records 200000] [--batch-size 2000] [--no-capture]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from llmpulse.agent.store.rows import attribute_string
from llmpulse.agent.store.schema import SchemaOptions, apply, column_types
from llmpulse.agent.store.schema.traces import OTEL_TRACES_COLUMNS, TRACE_COLUMNS

from llmpulse import agent

RESPONSE = {
    "id": "chatcmpl-ingest",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris is the capital."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}


class Keep:
    """Keeps the finished spans the pipeline built, to insert the very same rows raw."""

    def __init__(self) -> None:
        self.spans: list = []

    def __call__(self, spans) -> None:
        self.spans.extend(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=2_000, help="both sides (default: the pipeline's default)")
    parser.add_argument("--no-capture", action="store_true", help="content capture off (metrics and metadata only)")
    args = parser.parse_args()
    n, batch_size = args.records, args.batch_size

    store = tempfile.mkdtemp(prefix="llmpulse-ingest-")
    keep = Keep()
    agent.configure(
        f"chdb://{store}/store",
        database="pipeline",
        spool_dir=f"{store}/spool",
        service_name="ingest",
        batch_size=batch_size,
        capture_content=not args.no_capture,
        span_exporters=[keep],
    )

    @agent.observe
    def chat(model: str, messages: list, temperature: float = 0.2) -> dict:
        return RESPONSE

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    queue = agent._state.pipeline._queue  # the batcher's bounded queue
    max_queue = agent._state.pipeline.config.max_queue_size
    high_water = max(max_queue - 2 * batch_size, max_queue // 2)
    cpu_started = time.process_time()
    started = time.perf_counter()
    for index in range(n):
        if index % 100 == 0:
            while len(queue) > high_water:
                time.sleep(0.001)
        chat("gpt-4o-mini", messages, temperature=0.2)
    produced = time.perf_counter() - started
    assert agent.flush(600)
    pipeline_s = time.perf_counter() - started
    pipeline_cpu_s = time.process_time() - cpu_started
    stats = agent.stats()
    insert_s = stats.insert_seconds_total

    client = agent._state.pipeline.store_sink.writer.client
    mean_insert = round(n / stats.inserts)
    raw_s, raw_cpu_s = raw_insert(client, keep.spans, batch_size, "raw")
    same_size_s, _ = raw_insert(client, keep.spans, mean_insert, "raw_same_size")
    databases = ("pipeline", "raw", "raw_same_size")
    counts = {db: client.query(f"SELECT count() FROM {db}.otel_traces").result_rows[0][0] for db in databases}
    calls = {db: client.query(f"SELECT count() FROM {db}.llm_calls").result_rows[0][0] for db in databases}
    agent.shutdown(60)

    pipeline_rate, raw_rate, same_size_rate = n / pipeline_s, n / raw_s, n / same_size_s
    print(f"records: {n}, batch size: {batch_size}, content capture {'off' if args.no_capture else 'on'}")
    print(
        f"pipeline (calls -> queue -> enrich -> insert -> flush): {pipeline_s:6.2f} s  {pipeline_rate:10,.0f} records/s"
    )
    print(
        f"  the producer finished after {produced:.2f} s; inserts took {insert_s:.2f} s in {stats.inserts} inserts "
        f"(mean {mean_insert:,} rows)"
    )
    print(f"raw clickhouse-connect column-oriented insert:         {raw_s:6.2f} s  {raw_rate:10,.0f} records/s")
    print(
        f"CPU used (all threads, all cores): pipeline {pipeline_cpu_s / n * 1e6:.0f} us/record "
        f"({pipeline_cpu_s / pipeline_s:.0%} of one core), raw {raw_cpu_s / n * 1e6:.0f} us/record "
        f"({raw_cpu_s / raw_s:.0%})"
    )
    print(f"ratio pipeline/raw: {pipeline_rate / raw_rate:.2f}  (target >= 0.5)")
    print(
        f"raw at the pipeline's mean insert size ({mean_insert:,} rows): {same_size_s:6.2f} s "
        f"{same_size_rate:10,.0f} records/s; ratio pipeline/raw at that size: {pipeline_rate / same_size_rate:.2f}"
    )
    print(f"rows stored: otel_traces {counts}, llm_calls {calls}; dropped {stats.dropped}, spooled {stats.spooled}")


TRACE_TYPES = column_types(OTEL_TRACES_COLUMNS)


def spans_to_columns(spans, *, service_name: str, resource, scope_version: str) -> list[list]:
    """The pipeline's rows pivoted for clickhouse-connect's column-oriented ``insert`` (attribute values as
    strings, as the insert settings store the pipeline's JSON values): the raw baseline's input."""
    columns: list[list] = [[] for _ in TRACE_COLUMNS]
    resource_map = dict(resource)
    for span in spans:
        values = (
            span.start_ns,
            f"{span.trace_id:032x}",
            f"{span.span_id:016x}",
            f"{span.parent_id:016x}" if span.parent_id else "",
            "",
            span.name,
            span.kind,
            service_name,
            resource_map,
            "llmpulse",
            scope_version,
            _stringify(span.attributes),
            max(span.end_ns - span.start_ns, 0),
            span.status_code,
            span.status_message,
            [e[0] for e in span.events],
            [e[1] for e in span.events],
            [_stringify(e[2]) for e in span.events],
            [],
            [],
            [],
            [],
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _stringify(attributes) -> dict[str, str]:
    return {key: value if type(value) is str else attribute_string(value) for key, value in attributes.items()}


def raw_insert(client, spans: list, batch_size: int, database: str) -> tuple[float, float]:
    """Insert ``spans`` as pre-pivoted columns in batches of ``batch_size``; wall and CPU seconds."""
    apply(client, SchemaOptions(database=database))
    batches = [
        spans_to_columns(spans[i : i + batch_size], service_name="ingest", resource={}, scope_version="0")
        for i in range(0, len(spans), batch_size)
    ]
    cpu_started, started = time.process_time(), time.perf_counter()
    for batch in batches:
        client.insert(
            "otel_traces",
            batch,
            column_names=TRACE_COLUMNS,
            column_type_names=TRACE_TYPES,
            database=database,
            column_oriented=True,
            settings={"async_insert": 0},
        )
    return time.perf_counter() - started, time.process_time() - cpu_started


if __name__ == "__main__":
    main()
