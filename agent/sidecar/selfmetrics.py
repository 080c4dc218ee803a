"""The sidecar's own ``/metrics``: Prometheus exposition of its counters, read at scrape time.

A custom prometheus-client collector reads the pipeline's and receiver's counters when Prometheus
scrapes, so the hot paths keep plain integers and nothing is double-counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from llmpulse.agent.export.stats import Stats
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from .join import GenAIJoin
from .receiver import ReceiverStats
from .schedule import TickStats


class SidecarCollector(Collector):
    def __init__(
        self,
        pipeline_stats: Callable[[], Stats],
        receiver: ReceiverStats,
        ticks: TickStats,
        ready: Callable[[], bool],
        *,
        wal: Callable[[], dict[str, float] | None] = lambda: None,
        join: GenAIJoin | None = None,
    ) -> None:
        self._pipeline_stats = pipeline_stats
        self._receiver = receiver
        self._ticks = ticks
        self._ready = ready
        self._wal = wal  # the write-ahead log's figures (Sidecar._wal_stats); None when durable is off
        self._join = join

    def collect(self) -> Iterator[Any]:
        stats = self._pipeline_stats()
        yield GaugeMetricFamily("llmpulse_queue_depth", "Rows and records waiting in memory", value=stats.queue_depth)
        yield GaugeMetricFamily("llmpulse_spool_files", "Batches waiting in the disk spool", value=stats.spool_files)
        yield GaugeMetricFamily("llmpulse_spool_records", "Rows waiting in the disk spool", value=stats.spool_records)
        yield GaugeMetricFamily("llmpulse_ready", "1 when the store took the latest insert", value=int(self._ready()))
        received = CounterMetricFamily("llmpulse_received", "Items accepted by the OTLP receiver", labels=["signal"])
        received.add_metric(["traces"], self._receiver.spans_accepted)
        received.add_metric(["metrics"], self._receiver.data_points_accepted)
        received.add_metric(["logs"], self._receiver.log_records_accepted)
        yield received
        yield CounterMetricFamily(
            "llmpulse_refused_busy_spans",
            "Spans answered with 503 because the queue was full (the client retries them)",
            value=self._receiver.spans_refused_busy,
        )
        yield CounterMetricFamily("llmpulse_exported_records", "Rows stored in ClickHouse", value=stats.exported)
        yield CounterMetricFamily("llmpulse_spooled_records", "Rows written to the disk spool", value=stats.spooled)
        yield CounterMetricFamily("llmpulse_replayed_records", "Spooled rows later stored", value=stats.replayed)
        dropped = CounterMetricFamily("llmpulse_dropped_records", "Rows lost, by reason", labels=["reason"])
        for reason, count in sorted(stats.dropped_by_reason.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "llmpulse_unpriced_spans", "GenAI spans whose model has no price", value=self._receiver.unpriced_spans
        )
        yield SummaryMetricFamily(
            "llmpulse_insert_seconds",
            "Time of successful ClickHouse inserts",
            count_value=stats.inserts,
            sum_value=stats.insert_seconds_total,
        )
        requests = CounterMetricFamily(
            "llmpulse_http_requests", "OTLP requests by path and status", labels=["path", "code"]
        )
        for (path, status), count in sorted(self._receiver.requests.items()):
            requests.add_metric([path, str(status)], count)
        yield requests
        yield from self._limits()
        yield from self._wal_metrics()
        yield from self._join_metrics()
        ticks = SummaryMetricFamily(
            "llmpulse_collector_tick_seconds", "Cost of one collector tick", labels=["collector"]
        )
        errors = CounterMetricFamily("llmpulse_collector_errors", "Collector ticks that failed", labels=["collector"])
        rows = CounterMetricFamily("llmpulse_collector_rows", "Rows produced by collectors", labels=["collector"])
        for name in sorted(self._ticks.ticks):
            ticks.add_metric([name], count_value=self._ticks.ticks[name], sum_value=self._ticks.seconds_total[name])
            errors.add_metric([name], self._ticks.errors.get(name, 0))
            rows.add_metric([name], self._ticks.rows.get(name, 0))
        yield ticks
        yield errors
        yield rows

    def _limits(self) -> Iterator[Any]:
        receiver = self._receiver
        yield GaugeMetricFamily(
            "llmpulse_open_connections", "HTTP connections open now", value=receiver.open_connections()
        )
        yield CounterMetricFamily(
            "llmpulse_refused_connections",
            "Connections answered 503 and closed because max_connections were open",
            value=receiver.connections_refused,
        )
        yield GaugeMetricFamily(
            "llmpulse_inflight_body_bytes",
            "Request body bytes held now (capped by max_inflight_bytes)",
            value=receiver.inflight_bytes,
        )
        yield GaugeMetricFamily(
            "llmpulse_inflight_body_bytes_peak",
            "Most request body bytes held at once since the start",
            value=receiver.inflight_bytes_peak,
        )

    def _wal_metrics(self) -> Iterator[Any]:
        wal = self._wal()
        if wal is None:
            return
        yield GaugeMetricFamily("llmpulse_wal_bytes", "Size of the write-ahead log on disk", value=wal["bytes"])
        yield GaugeMetricFamily(
            "llmpulse_wal_replay_pending_records",
            "Records an earlier run left in the write-ahead log, not yet queued again",
            value=wal["recovered_records"],
        )
        yield CounterMetricFamily(
            "llmpulse_wal_records",
            "Records (requests, batch seals, release marks) written to the write-ahead log",
            value=wal["records_written"],
        )
        yield CounterMetricFamily(
            "llmpulse_wal_written_bytes", "Bytes written to the write-ahead log", value=wal["bytes_written"]
        )
        yield CounterMetricFamily("llmpulse_wal_fsyncs", "fsync calls of the write-ahead log", value=wal["fsyncs"])
        yield CounterMetricFamily(
            "llmpulse_wal_write_errors", "Write-ahead log writes that failed (answered 503)", value=wal["write_errors"]
        )
        yield CounterMetricFamily(
            "llmpulse_wal_torn_bytes_cut",
            "Bytes of unfinished writes cut from the log's end at start (never acknowledged)",
            value=wal["torn_bytes_cut"],
        )
        yield CounterMetricFamily(
            "llmpulse_wal_replayed_records",
            "Records of an earlier run queued again from the write-ahead log",
            value=wal["replayed_records"],
        )
        yield CounterMetricFamily(
            "llmpulse_wal_replayed_rows",
            "Rows of an earlier run queued again from the write-ahead log",
            value=wal["replayed_rows"],
        )

    def _join_metrics(self) -> Iterator[Any]:
        join = self._join
        if join is None:
            return
        stats = join.stats
        yield GaugeMetricFamily(
            "llmpulse_join_waiting_spans", "LLM spans waiting for their GenAI events", value=join.waiting_spans()
        )
        yield GaugeMetricFamily(
            "llmpulse_join_waiting_events", "GenAI events waiting for their span", value=join.pending_events()
        )
        events = CounterMetricFamily(
            "llmpulse_join_events",
            "GenAI events (OTLP logs) by outcome: joined to their span's llm_calls row, or unmatched (no span "
            "took them in time; they are in otel_logs only)",
            labels=["outcome"],
        )
        events.add_metric(["joined"], stats.events_joined)
        events.add_metric(["unmatched"], stats.events_unmatched)
        yield events
        spans = CounterMetricFamily(
            "llmpulse_join_spans",
            "LLM spans stored before their events, by outcome: deferred (their llm_calls row waited), joined "
            "(written with events), without_events (the wait ended first), not_deferred (too many waiting)",
            labels=["outcome"],
        )
        spans.add_metric(["deferred"], stats.spans_deferred)
        spans.add_metric(["joined"], stats.spans_joined)
        spans.add_metric(["without_events"], stats.spans_without_events)
        spans.add_metric(["not_deferred"], stats.spans_not_deferred)
        yield spans
        yield CounterMetricFamily(
            "llmpulse_join_contexts",
            "LLM spans given the documents of their trace's retrieval spans as RAG context",
            value=stats.contexts_attached,
        )
