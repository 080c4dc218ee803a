"""The sidecar process: OTLP receiver, GPU collector, serving-engine scraper and analyzer schedule.

One asyncio loop serves HTTP (aiohttp); decoding, collector ticks and analyzer runs happen on worker
threads so ``/healthz`` answers while they work. Everything goes through one :class:`Pipeline`, which
owns the store (an embedded store can be opened by one process only: this one) and the disk spool.
SIGTERM or SIGINT: stop accepting, stop the collectors, flush (or spool) within the deadline, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._log import logger
from .clickhouse import rows_to_batch
from .pipeline import Pipeline
from .prices import PriceTable
from .receiver import OtlpReceiver, serve
from .redaction import Redaction
from .selfmetrics import SidecarCollector, TickStats
from .sidecar_config import SidecarConfig
from .wal import DurableSink, WriteAheadLog

Rows = dict[str, list[dict[str, Any]]]


class Sidecar:
    """Build with a validated config; ``await start()``, then ``await stop()`` (or ``run()`` for both)."""

    def __init__(
        self,
        config: SidecarConfig,
        *,
        nvml: Any = None,
        fetch: Callable[[str, float], str] | None = None,
        version: str = "0.1.0",
    ) -> None:
        self.config = config
        self.pipeline = Pipeline(config.pipeline, version=version)
        prices = PriceTable.vendored()
        # Durable: a 200 means the request is in the write-ahead log (replayed after a crash); else in memory.
        self.wal: WriteAheadLog | None = None
        self.durable: DurableSink | None = None
        sink: Callable[..., Any] = self.pipeline.submit_rows
        if config.durable:
            self.durable = sink = DurableSink(None, self.pipeline)  # the log is opened with the store
        self.receiver = OtlpReceiver(
            sink,
            max_body_bytes=config.max_body_bytes,
            max_inflight_bytes=config.max_inflight_bytes,
            auth_token=config.auth_token,
            metrics_without_auth=config.metrics_without_auth,
            prices=prices,
            redaction=Redaction(categories=config.pipeline.redact_categories) if config.redact_otlp else None,
        )
        self.ticks = TickStats()
        self._nvml = nvml
        self._fetch = fetch
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self.wal_replayed = (0, 0)  # records and rows of an earlier run queued from the write-ahead log
        self._closers: list[Callable[[], None]] = []
        self.port: int | None = None
        self._stopped = asyncio.Event()
        self._metrics_registry: Any = None

    # --- lifecycle -------------------------------------------------------------------------------

    def open_store(self) -> None:
        """Open the store and apply the schema now; raises when it cannot be opened (CLI exits 1)."""
        self.pipeline.open_store()
        self._open_wal()

    def _open_wal(self) -> None:
        """Open the write-ahead log (after the store: an agent that cannot have the store leaves the log alone)."""
        if self.durable is None or self.wal is not None:
            return
        config = self.config
        self.wal = WriteAheadLog(config.wal_dir, fsync=config.wal_fsync, max_bytes=config.wal_max_bytes)
        self.durable.log = self.wal

    async def start(self) -> None:
        from prometheus_client import CollectorRegistry

        self._open_wal()
        app = web.Application(client_max_size=self.config.max_body_bytes)
        self.receiver.add_routes(app)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/dashboard", self._dashboard)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            SidecarCollector(self.pipeline.snapshot, self.receiver.stats, self.ticks, self.ready, wal=self._wal_stats)
        )
        self._metrics_registry = registry
        # OTLP bodies are decompressed by the receiver itself, with the size limit applied to the output.
        self._runner = web.AppRunner(
            app,
            auto_decompress=False,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
            keepalive_timeout=self.config.idle_timeout,
        )
        await self._runner.setup()
        self._listener = await serve(
            self._runner,
            self.config.host,
            self.config.port,
            max_connections=self.config.max_connections,
            stats=self.receiver.stats,
        )
        sockets = self._listener.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        if not self.config.auth_token and not _is_loopback(self.config.host):
            logger.warning(
                "llmpulse agent: listening on %s without --auth-token: anyone who can reach the port can write "
                "spans and read /dashboard and /metrics; set a token or bind to 127.0.0.1",
                self.config.host,
            )
        if self.config.sources.get("auth_token") == "--auth-token":
            logger.warning(
                "llmpulse agent: --auth-token on the command line is visible to every user of this machine "
                "(ps, /proc); put it in a file and pass --auth-token-file, or set $LLMPULSE_AGENT_TOKEN"
            )
        self._start_collectors()
        if self.durable is not None:
            self._tasks.append(asyncio.ensure_future(self._replay_wal(self.durable)))
        logger.warning(
            "llmpulse agent: listening on %s:%s (OTLP/HTTP /v1/traces /v1/metrics, /metrics, /healthz, /readyz), store %s",
            self.config.host,
            self.port,
            self.config.pipeline.store.safe() if self.config.pipeline.store else "none",
        )

    async def stop(self) -> bool:
        """Stop accepting, stop the loops, flush within ``shutdown_timeout``; True when all was written."""
        started = time.monotonic()
        self.receiver.accepting = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()  # no new connections
        if self._runner is not None:
            await self._runner.cleanup()  # lets requests in flight finish, closes the connections
        self.receiver.close()
        for close in self._closers:
            try:
                close()
            except Exception:
                logger.warning("llmpulse agent: closing a collector failed", exc_info=True)
        left = max(self.config.shutdown_timeout - (time.monotonic() - started), 0.5)
        loop = asyncio.get_running_loop()
        finished = await loop.run_in_executor(None, self.pipeline.shutdown, left)
        if self.wal is not None:
            await loop.run_in_executor(None, self.wal.close)  # what is not settled stays for the next start
        stats = self.pipeline.snapshot()
        logger.warning(
            "llmpulse agent: stopped; %d rows stored, %d spooled for later, %d dropped",
            stats.exported,
            stats.spool_records,
            stats.dropped,
        )
        self._stopped.set()
        return finished

    async def run(self, stop: asyncio.Event | None = None) -> bool:
        """Serve until SIGTERM/SIGINT (or ``stop`` is set), then shut down cleanly."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
                pass
        await self.start()
        await stop.wait()
        return await self.stop()

    async def _replay_wal(self, durable: DurableSink) -> None:
        """Queue what a previous run acknowledged and did not settle; its batches keep their tokens."""
        try:
            records, rows = await durable.replay()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.error(
                "llmpulse agent: replaying the write-ahead log failed; it is tried again at the next start",
                exc_info=True,
            )
            return
        self.wal_replayed = (records, rows)
        logger.warning(
            "llmpulse agent: write-ahead log replayed: %d records, %d rows from an earlier run", records, rows
        )

    def _wal_stats(self) -> dict[str, float] | None:
        """What /metrics shows of the write-ahead log (None when durable is off or the log is not open)."""
        wal = self.wal
        if wal is None:
            return None
        stats = wal.stats
        return {
            "bytes": wal.size_bytes(),
            "records_written": stats.records,
            "bytes_written": stats.bytes_written,
            "fsyncs": stats.fsyncs,
            "write_errors": stats.write_errors,
            "torn_bytes_cut": stats.torn_bytes_cut,
            "replayed_records": self.wal_replayed[0],
            "replayed_rows": self.wal_replayed[1],
            "recovered_records": sum(len(item.seqs) for item in wal.recovered),
        }

    # --- HTTP ------------------------------------------------------------------------------------

    def ready(self) -> bool:
        return self.receiver.accepting and self.pipeline.store_ok is not False

    async def _metrics(self, _request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self._metrics_registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _dashboard(self, request: web.Request) -> web.Response:
        """The built-in HTML dashboard, rendered from the store on each request (``?window=24h``)."""
        window = request.query.get("window", "24h")
        loop = asyncio.get_running_loop()
        try:
            html = await loop.run_in_executor(None, self._render_dashboard, window)
        except ValueError as exc:
            return web.Response(status=400, text=f"bad window {window!r}: {exc}\n")
        return web.Response(text=html, content_type="text/html")

    def _render_dashboard(self, window: str) -> str:
        from llmpulse.dashboards.report import render_report

        store = self.config.pipeline.store
        assert store is not None
        client = store.client()
        try:
            return render_report(client, store.database, window=window, store_label=store.safe())
        finally:
            client.close()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.ready():
            return web.json_response({"status": "ready"})
        reason = "shutting down" if not self.receiver.accepting else "the store did not take the latest insert"
        return web.json_response({"status": "not ready", "reason": reason}, status=503)

    # --- collectors ------------------------------------------------------------------------------

    def _start_collectors(self) -> None:
        if self.config.gpu != "off":
            self._start_gpu()
        for target in self.config.scrape:
            from llmpulse.collectors.serving import ServingScraper

            scraper = ServingScraper(target.url, engine=target.engine, fetch=self._fetch, model_name=target.model)
            name = f"serving:{target.url}"
            self._tasks.append(asyncio.ensure_future(self._loop(name, self.config.scrape_interval, scraper)))
        if self.config.analyze_every > 0:
            self._tasks.append(asyncio.ensure_future(self._analyze_loop()))

    def _start_gpu(self) -> None:
        from llmpulse.collectors.gpu import GpuCollector

        collector = GpuCollector(self._nvml, hostname=socket.gethostname(), read_pcie=self.config.gpu_pcie)
        if not collector.start():
            if self.config.gpu == "on":
                raise RuntimeError("gpu is 'on' but no NVIDIA GPU could be read (see the warning above)")
            return
        self._closers.append(collector.close)
        self._tasks.append(asyncio.ensure_future(self._loop("gpu", self.config.gpu_interval, collector)))

    async def _loop(self, name: str, interval: float, source: Any) -> None:
        """Call ``source.collect`` every ``interval`` seconds on a worker thread; failures are logged and counted.

        A source that handles its own failures (the scraper returns no rows and counts
        ``scrape_errors``) is counted as failed for that tick too.
        """
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            errors_before = getattr(source, "scrape_errors", 0)
            count, failed = 0, False
            try:
                rows = await loop.run_in_executor(None, source.collect, datetime.now(timezone.utc))
                count = self._submit(name, rows)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed = True
                logger.error("llmpulse agent: %s collector tick failed", name, exc_info=True)
            failed = failed or getattr(source, "scrape_errors", 0) > errors_before
            self.ticks.record(name, time.perf_counter() - started, count, failed)
            next_tick += interval
            await asyncio.sleep(max(next_tick - loop.time(), 0.0))

    def _submit(self, name: str, rows: Rows) -> int:
        batches = [rows_to_batch(table, table_rows) for table, table_rows in rows.items() if table_rows]
        count = sum(b.count for b in batches)
        if batches and not self.pipeline.submit_rows(batches):
            self.pipeline.count_drop(f"{name.split(':', maxsplit=1)[0]}_queue_full", count)
            return 0
        return count

    async def _analyze_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.analyze_every)
            started = time.perf_counter()
            failed = False
            try:
                await loop.run_in_executor(None, self._run_analyzers)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed = True
                logger.error("llmpulse agent: scheduled analysis failed", exc_info=True)
            self.ticks.record("analyzers", time.perf_counter() - started, 0, failed)

    def _run_analyzers(self) -> None:
        """All registered analyzers on the configured windows; results and alerts go to the store."""
        from llmpulse.analyzers.store import run_all

        store = self.config.pipeline.store
        assert store is not None
        client = store.client()  # its own client: the writer's stays with the writer thread
        try:
            results = run_all(client, store.database, self.config.analyze_window, self.config.analyze_reference)
        finally:
            client.close()
        alerts = sum(1 for result in results if result.alert)
        logger.warning("llmpulse agent: scheduled analysis wrote %d results, %d alerting", len(results), alerts)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a name is taken as loopback only if it is localhost)."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
