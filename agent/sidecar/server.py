"""The sidecar process: OTLP receiver, GPU collector, serving-engine scraper and analyzer schedule.

One asyncio loop serves HTTP (aiohttp); decoding, collector ticks and analyzer runs (``schedule``)
happen on worker threads so ``/healthz`` answers while they work. Everything goes through one
:class:`Pipeline`, which owns the store (an embedded store can be opened by one process only: this one)
and the disk spool. SIGTERM or SIGINT: stop accepting, stop the collectors, flush (or spool) within the
deadline, exit 0.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from llmpulse.agent._log import logger
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.enrich.redaction import Redaction
from llmpulse.agent.export.pipeline import Pipeline

from .config import SidecarConfig
from .durable import DurableSink
from .join import GenAIJoin, joined_batch
from .receiver import OtlpReceiver, serve
from .schedule import Schedule, TickStats
from .selfmetrics import SidecarCollector
from .wal import WriteAheadLog


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
        prices = PriceTable.default()  # vendored, then litellm's bundled list when installed
        # Durable: a 200 means the request is in the write-ahead log (replayed after a crash); else in memory.
        self.wal: WriteAheadLog | None = None
        self.durable: DurableSink | None = None
        sink: Callable[..., Any] = self.pipeline.submit_rows
        if config.durable:
            self.durable = sink = DurableSink(None, self.pipeline)  # the log is opened with the store
        self._sink = sink
        self.join = GenAIJoin(config.events_wait)
        self._joined_unwritten: list[list[Any]] = []  # rows of finished joins the sink refused: tried again
        self.receiver = OtlpReceiver(
            sink,
            max_body_bytes=config.max_body_bytes,
            max_inflight_bytes=config.max_inflight_bytes,
            auth_token=config.auth_token,
            metrics_without_auth=config.metrics_without_auth,
            prices=prices,
            redaction=Redaction(categories=config.pipeline.redact_categories) if config.redact_otlp else None,
            join=self.join,
        )
        self.ticks = TickStats()
        self._schedule = Schedule(self.pipeline, self.ticks)
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
            SidecarCollector(
                self.pipeline.snapshot, self.receiver.stats, self.ticks, self.ready, wal=self._wal_stats, join=self.join
            )
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
        self._tasks.append(asyncio.ensure_future(self._release_joined()))
        self._tasks.append(asyncio.ensure_future(self._replay_and_recover()))
        logger.warning(
            "llmpulse agent: listening on %s:%s (OTLP/HTTP /v1/traces /v1/metrics /v1/logs, /metrics, /healthz, "
            "/readyz), store %s",
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
        # Spans still waiting for their events are written now, with what came; a refusal leaves them to
        # the next start (they are in otel_traces, see recovery).
        await self._write_joined([*self._joined_unwritten, *self.join.drain()])
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

    async def _release_joined(self) -> None:
        """Write the llm_calls rows of spans whose wait for their GenAI events has ended, about every second."""
        interval = min(1.0, max(self.join.wait / 4, 0.05))
        while True:
            await asyncio.sleep(interval)
            rows = [*self._joined_unwritten, *self.join.expired()]
            self._joined_unwritten = []
            if rows and not await self._write_joined(rows):
                self._joined_unwritten = rows

    async def _write_joined(self, rows: list[list[Any]]) -> bool:
        if not rows:
            return True
        accepted = self._sink([joined_batch(rows)])
        if inspect.isawaitable(accepted):
            accepted = await accepted
        return bool(accepted)

    async def _replay_and_recover(self) -> None:
        """Replay the write-ahead log, then give the join the spans an earlier run left waiting."""
        if self.durable is not None:
            await self._replay_wal(self.durable)
        if self.join.wait <= 0 or self.config.pipeline.store is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.pipeline.flush, self.config.shutdown_timeout)
            found = await loop.run_in_executor(None, self._waiting_in_store)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning(
                "llmpulse agent: could not look for spans left waiting for their events; they are looked for "
                "again at the next start",
                exc_info=True,
            )
            return
        added = self.join.restore(found)
        if added:
            logger.warning("llmpulse agent: %d spans left waiting for their GenAI events by an earlier run", added)

    def _waiting_in_store(self) -> list[Any]:
        from .recovery import waiting_spans

        store = self.config.pipeline.store
        assert store is not None
        client = store.client()
        try:
            return waiting_spans(client, store.database)
        finally:
            client.close()

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
            self._closers.append(scraper.close)
            name = f"serving:{target.url}"
            self._tasks.append(
                asyncio.ensure_future(self._schedule.collect(name, self.config.scrape_interval, scraper))
            )
        if self.config.analyze_every > 0:
            store = self.config.pipeline.store
            assert store is not None
            config = self.config
            self._tasks.append(
                asyncio.ensure_future(
                    self._schedule.analyze(config.analyze_every, store, config.analyze_window, config.analyze_reference)
                )
            )

    def _start_gpu(self) -> None:
        from llmpulse.collectors.gpu import GpuCollector

        collector = GpuCollector(self._nvml, hostname=socket.gethostname(), read_pcie=self.config.gpu_pcie)
        if not collector.start():
            if self.config.gpu == "on":
                raise RuntimeError("gpu is 'on' but no NVIDIA GPU could be read (see the warning above)")
            return
        self._closers.append(collector.close)
        self._tasks.append(asyncio.ensure_future(self._schedule.collect("gpu", self.config.gpu_interval, collector)))


def _is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a name is taken as loopback only if it is localhost)."""
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
