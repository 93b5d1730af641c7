"""The monitoring endpoint on the bot's event loop: ``/metrics``, ``/healthz`` and ``/readyz`` on ``metrics.port``.

``/healthz`` answers 200 while the process serves HTTP at all (liveness).
``/readyz`` answers 200 when the engine is ready, the database takes a write and
the gateway is connected, else 503 naming each failing check (readiness). Beside
the server runs a probe of the event loop's lag, and the job watcher that counts
jobs from the scheduler's events (see :mod:`bot.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from bot.db import Database
from bot.discord_metrics import DiscordMetrics
from bot.metrics import BotMetrics, JobWatcher
from bot.scheduler.service import DreamService
from bot.settings import MetricsSettings
from engine.types import EngineClient

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0
"""Longest a readiness check may wait for the database (behind the app's own writes) before failing."""
LAG_PROBE_INTERVAL_S = 0.5
"""How often the lag probe asks the event loop for a timer; its lateness is the lag."""


class _RolledBack(Exception):
    """Ends the readiness write's transaction with a rollback."""


async def check_database(db: Database) -> None:
    """Raise unless the database takes a write: a table created in a transaction, then rolled back, so the
    write takes the write lock and touches the schema yet leaves nothing behind."""
    with contextlib.suppress(_RolledBack):
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE readiness_probe (x)")
            raise _RolledBack


class Readiness:
    """The checks behind ``/readyz``: engine ready, database writable, gateway connected."""

    def __init__(self, engine: EngineClient, db: Database, discord: DiscordMetrics) -> None:
        self.engine = engine
        self.db = db
        self.discord = discord

    async def failures(self) -> dict[str, str]:
        """Each failing check's name and why; empty when ready."""
        failing: dict[str, str] = {}
        health = self.engine.health()
        if not health.ready:
            failing["engine"] = health.detail or "not ready"
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await check_database(self.db)
        except TimeoutError:
            failing["database"] = f"no write within {READY_TIMEOUT_S:g} s"
        except Exception as exc:  # whatever SQLite says (read-only, disk full, I/O error) is the reason
            failing["database"] = str(exc) or type(exc).__name__
        if not self.discord.gateway_connected:
            failing["gateway"] = "not connected to Discord"
        return failing


class Monitoring:
    """The endpoint and the probes feeding it, for one app; nothing runs unless ``metrics.port`` is set."""

    def __init__(self, settings: MetricsSettings, metrics: BotMetrics, readiness: Readiness) -> None:
        self.settings = settings
        self.metrics = metrics
        self.readiness = readiness
        self._runner: web.AppRunner | None = None
        self._jobs: JobWatcher | None = None
        self._lag_probe: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        """The port being served (the one chosen when configured as 0); None when not serving."""
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    async def start(self, dreams: DreamService) -> None:
        """Start counting ``dreams``' jobs (call before it starts, to count recovered jobs), probing the
        event loop and serving the endpoint."""
        if self.settings.port is None:
            return
        self.metrics.watch_engine(self.readiness.engine)
        self._jobs = self.metrics.watch_jobs(dreams.subscribe())
        self._lag_probe = asyncio.create_task(self._probe_lag(), name="metrics-lag-probe")
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        app.router.add_get("/readyz", self._serve_readiness)
        try:
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
            self._runner = runner
            await web.TCPSite(self._runner, self.settings.host, self.settings.port).start()
        except BaseException:
            await self.close()
            raise
        log.info("metrics, /healthz and /readyz on http://%s:%s", self.settings.host, self.port)

    async def close(self) -> None:
        """Stop serving and probing."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._lag_probe is not None:
            self._lag_probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_probe
            self._lag_probe = None
        if self._jobs is not None:
            await self._jobs.close()
            self._jobs = None

    async def _probe_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_PROBE_INTERVAL_S)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - asked - LAG_PROBE_INTERVAL_S))

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.metrics.registry), headers={"Content-Type": content_type})

    async def _serve_health(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _serve_readiness(self, request: web.Request) -> web.Response:
        failing = await self.readiness.failures()
        return web.json_response({"ready": not failing, "failing": failing}, status=503 if failing else 200)
