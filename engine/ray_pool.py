"""Engines as Ray actors (``engine.backend: ray``): a pool sized to the cluster, with failover.

:class:`RayPool` connects to the cluster at ``engine.ray.address`` (or starts
one in-process with ``local``), starts ``engine.pool.min_engines`` engines and
then as many more as the cluster has room for, up to ``max_engines``: one
:class:`~engine.ray_host.EngineHost` actor each, holding ``engine.ray.num_gpus``.
Every ``scan_interval_s`` (and at once when one dies) it checks its engines,
replaces dead ones and starts engines on GPUs that joined the cluster.

:class:`RayEngine` drives one actor as an :class:`~engine.types.EngineClient`:
progress streams from the actor while a batch runs; an actor that dies, or
that reports no step for ``engine.watchdog_timeout_s``, fails its batch with a
retryable reason (the scheduler re-queues the jobs) and leaves the pool.

Ray is imported only when the pool starts: the bot runs without it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from engine.client import CRASHED, HUNG, EngineStartError
from engine.config import EngineSettings
from engine.pool import EnginePool
from engine.ray_connect import Connection, connect
from engine.protocol import EngineFaults
from engine.types import EngineHealth, JobRequest, JobResult, Outcome, Progress, ProgressCallback

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""How long an engine actor may take to stop its engine before it is killed."""


class RayEngine:
    """One engine actor, driven like a local engine; ``on_lost`` hears when it dies or hangs."""

    def __init__(self, actor: Any, settings: EngineSettings, name: str,
                 on_lost: Callable[[RayEngine], None]) -> None:  # fmt: skip
        self.actor = actor
        self.settings = settings
        self.limits = settings.limits
        self.name = name
        self.lost = False
        self._on_lost = on_lost
        self._pending: set[str] = set()
        self._health = EngineHealth(ready=False, busy=False, detail="starting")

    async def start(self) -> None:
        """Wait for the actor to be placed (``ray.start_timeout_s``), then for its model (``start_timeout_s``)."""
        try:
            await asyncio.wait_for(self.actor.health.remote(), self.settings.ray.start_timeout_s)
        except TimeoutError:
            raise EngineStartError(
                f"engine.pool: no room on the cluster for {self.name} within engine.ray.start_timeout_s "
                f"({self.settings.ray.start_timeout_s:g} s): each engine holds engine.ray.num_gpus "
                f"({self.settings.ray.num_gpus:g}) GPUs and engine.ray.num_cpus ({self.settings.ray.num_cpus:g}) CPUs"
            ) from None
        try:
            self._health = await asyncio.wait_for(self.actor.start.remote(), self.settings.start_timeout_s)
        except TimeoutError:
            raise EngineStartError(
                f"engine {self.name} did not load the model within engine.start_timeout_s "
                f"({self.settings.start_timeout_s:g} s)"
            ) from None

    async def close(self) -> None:
        """Stop the engine in the actor, then the actor."""
        import ray

        if not self.lost:
            try:
                await asyncio.wait_for(self.actor.close.remote(), STOP_TIMEOUT_S)
            except Exception:
                log.warning("engine %s did not stop cleanly; killing it", self.name, exc_info=True)
        ray.kill(self.actor)
        self.lost = True

    async def generate(
        self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None = None
    ) -> list[JobResult]:
        """Run ``jobs`` on the actor, reporting its progress; a death or hang fails them, retryable."""
        from ray.exceptions import RayError

        ids = {job.job_id for job in jobs}
        self._pending |= ids
        try:
            stream = self.actor.generate.options(num_returns="streaming").remote(list(jobs))
            while True:
                item = await asyncio.wait_for(self._next(stream), self.settings.watchdog_timeout_s)
                if not isinstance(item, Progress):
                    self._health = await self.actor.health.remote()
                    return item
                if on_progress is not None:
                    await self._report(on_progress, item)
        except TimeoutError:
            log.error("engine %s reported no step for %g s: killing it", self.name, self.settings.watchdog_timeout_s)
            return self._lose(jobs, HUNG)
        except (RayError, StopAsyncIteration):
            log.error("engine %s died while running jobs %s", self.name, sorted(ids), exc_info=True)
            return self._lose(jobs, CRASHED)
        finally:
            self._pending -= ids

    @staticmethod
    async def _next(stream: Any) -> Progress | list[JobResult]:
        return await (await stream.__anext__())

    async def _report(self, on_progress: ProgressCallback, progress: Progress) -> None:
        try:
            reported = on_progress(progress)
            if inspect.isawaitable(reported):
                await reported
        except Exception:  # the batch goes on: a listener's failure is not the engine's
            log.exception("progress callback failed for job %s", progress.job_id)

    def _lose(self, jobs: Sequence[JobRequest], reason: str) -> list[JobResult]:
        """The actor is dead or hung: kill it, leave the pool, fail the batch's jobs (retryable)."""
        import ray

        if not self.lost:
            self.lost = True
            ray.kill(self.actor)
            self._on_lost(self)
        return [JobResult(job.job_id, Outcome.FAILED, error=reason, retryable=True) for job in jobs]

    async def check(self) -> bool:
        """Refresh the actor's health; an actor that is gone (its node lost, or killed) is lost. Whether it lives."""
        from ray.exceptions import RayError

        if not self.lost:
            try:
                self._health = await self.actor.health.remote()
            except RayError:
                log.error("engine %s is gone", self.name)
                self._lose([], CRASHED)
        return not self.lost

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job running on the actor; False if it holds none by that id (or is gone)."""
        from ray.exceptions import RayError

        if job_id not in self._pending or self.lost:
            return False
        try:
            return await self.actor.cancel.remote(job_id)
        except RayError:
            return False

    def health(self) -> EngineHealth:
        """The actor's health as of its last batch, with this side's view of ready and busy."""
        detail = "lost" if self.lost else self._health.detail
        return replace(self._health, ready=self._health.ready and not self.lost, busy=bool(self._pending),
                       detail=f"{self.name}: {detail}" if detail else self.name)


class RayPool(EnginePool):
    """Engine actors on a Ray cluster, kept between ``pool.min_engines`` and ``pool.max_engines``."""

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(limits=settings.limits)
        self.settings = settings
        self._names = itertools.count(1)
        self._connection: Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()

    async def start(self) -> None:
        """Connect to the cluster and start ``min_engines`` engines (then more, where there is room).

        Raises :class:`EngineStartError` naming the key to fix when the cluster cannot be reached or the
        engines cannot be started.
        """
        self._connection = await connect(self.settings.ray)
        engines = await asyncio.gather(*(self.add_engine() for _ in range(self.settings.pool.min_engines)),
                                       return_exceptions=True)
        failed = [engine for engine in engines if isinstance(engine, BaseException)]
        if failed:
            await self.close()
            raise failed[0]
        await self.grow()
        self._keeper = asyncio.create_task(self._keep(), name="ray-engine-pool")

    async def close(self) -> None:
        """Stop every engine and close the connection to Ray, if this pool made it."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        engines, self.engines = self.engines, []
        await asyncio.gather(*(engine.close() for engine in engines), return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def add_engine(self, faults: EngineFaults | None = None) -> RayEngine:
        """Start one more engine actor and, once it is ready, add it to the pool (``faults``: tests only)."""
        import ray

        from engine.ray_host import EngineHost

        ray_settings = self.settings.ray

        def create() -> Any:
            host = ray.remote(EngineHost).options(num_gpus=ray_settings.num_gpus, num_cpus=ray_settings.num_cpus)
            return host.remote(self.settings, faults)

        # In a thread: exporting the actor's class and arguments to the cluster takes the loop ~100 ms of CPU.
        actor = await asyncio.to_thread(create)
        engine = RayEngine(actor, self.settings, f"engine-{next(self._names)}", self._lost)
        try:
            await engine.start()
        except BaseException:
            ray.kill(engine.actor)
            raise
        log.info("%s ready on the Ray cluster", engine.name)
        self.add(engine)
        return engine

    async def grow(self) -> int:
        """Start engines while the cluster has room for one and the pool is under ``max_engines``; how many."""
        import ray

        started = 0
        ray_settings = self.settings.ray
        while len(self.engines) < self.settings.pool.max_engines:
            free = await asyncio.to_thread(ray.available_resources)
            if free.get("GPU", 0.0) < ray_settings.num_gpus or free.get("CPU", 0.0) < ray_settings.num_cpus:
                break
            await self.add_engine()
            started += 1
        return started

    def _lost(self, engine: RayEngine) -> None:
        """An engine died or hung: out of the pool now; the keeper starts another at once."""
        self.remove(engine)
        self._kick.set()

    async def _keep(self) -> None:
        """Drop dead engines, keep ``min_engines`` and take GPUs that join: every ``scan_interval_s``, and at
        once when an engine is lost."""
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), self.settings.ray.scan_interval_s)
            except TimeoutError:
                pass
            self._kick.clear()
            try:
                await asyncio.gather(*(engine.check() for engine in self.engines if isinstance(engine, RayEngine)))
                while len(self.engines) < self.settings.pool.min_engines:
                    await self.add_engine()
                await self.grow()
            except Exception:
                log.exception("could not start a replacement engine; trying again in %g s",
                              self.settings.ray.scan_interval_s)
