"""A pool of engines the scheduler hands batches to: one engine by default, several on a Ray cluster.

:class:`EnginePool` holds the engines that take work now, and tells whoever
listens (the scheduler's dispatcher) when one joins or leaves. It is itself an
:class:`~engine.types.EngineClient` for what the rest of the bot asks of "the
engine": start and stop, request limits, health (every engine's, combined),
cancel (reaching whichever engine holds the job).

:func:`local_engine` makes the engine of one machine: the engine process, or
the simulated engine with ``engine.simulated``. A Ray actor hosts the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from engine.config import EngineSettings
from engine.protocol import EngineFaults
from engine.types import EngineClient, EngineHealth, JobRequest, JobResult, Limits, ProgressCallback

log = logging.getLogger(__name__)

PEAK_FIGURES = frozenset({"peak_memory_mb", "last_batch_seconds", "batch_size", "max_batch_images"})
"""Health figures that combine across engines as the largest, not the sum."""


def local_engine(settings: EngineSettings, faults: EngineFaults | None = None) -> EngineClient:
    """The engine of one machine: the simulated engine when ``engine.simulated``, else the engine process.

    ``faults`` are for tests (the simulated engine honours ``hold_jobs`` only)."""
    faults = faults or EngineFaults()
    if settings.simulated:
        from engine.simulated import SimulatedEngine

        return SimulatedEngine.from_settings(settings, hold_jobs=faults.hold_jobs)
    from engine.client import EngineProcess

    return EngineProcess(settings, faults=faults)


def combined_health(healths: Sequence[EngineHealth]) -> EngineHealth:
    """Several engines' health as one: ready or busy if any is; counters summed, peaks the largest.

    One engine's health comes back as it was, plus ``engines`` and ``engines_ready`` in ``extra``. Each
    engine's own health is in ``engines``; speeds add up, sizes are every engine's.
    """
    extra: dict[str, float] = {}
    for health in healths:
        for key, value in health.extra.items():
            if key in PEAK_FIGURES:
                extra[key] = max(extra.get(key, value), value)
            else:
                extra[key] = extra.get(key, 0.0) + value
    extra["engines"] = float(len(healths))
    extra["engines_ready"] = float(sum(health.ready for health in healths))

    def joined(values: Sequence[str], separator: str) -> str:
        return separator.join(dict.fromkeys(value for value in values if value))

    return EngineHealth(
        ready=any(health.ready for health in healths),
        busy=any(health.busy for health in healths),
        restarts=sum(health.restarts for health in healths),
        device=joined([health.device for health in healths], ", "),
        model=joined([health.model for health in healths], ", "),
        detail=joined([health.detail for health in healths], "; ") if healths else "no engines",
        extra=extra,
        sizes=tuple(sorted({size for health in healths for size in health.sizes})),
        images_per_second=sum(speeds) if (speeds := [health.images_per_second for health in healths
                                                     if health.images_per_second is not None]) else None,
        engines=tuple(healths),
    )


class EnginePool:
    """The engines that take work now; listeners hear when one joins or leaves.

    The pool starts and closes the engines it is given. Subclasses (the Ray
    pool) add and remove engines while the bot runs.
    """

    def __init__(self, engines: Sequence[EngineClient] = (), *, limits: Limits | None = None) -> None:
        if limits is None and not engines:
            raise ValueError("an empty pool needs its request limits")
        self.limits = limits or engines[0].limits
        self.engines: list[EngineClient] = list(engines)
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever an engine joins or leaves the pool."""
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback`` (a listener that was never added is ignored)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def add(self, engine: EngineClient) -> None:
        """A started engine joins the pool and takes work from now on."""
        self.engines.append(engine)
        self._changed()

    def remove(self, engine: EngineClient) -> bool:
        """Take an engine out of the pool (the batch it runs ends as it ends); False if it was not in it."""
        if engine not in self.engines:
            return False
        self.engines.remove(engine)
        self._changed()
        return True

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    async def start(self) -> None:
        """Start every engine, together."""
        await asyncio.gather(*(engine.start() for engine in self.engines))

    async def close(self) -> None:
        """Stop every engine; batches still running fail with a retryable reason."""
        await asyncio.gather(*(engine.close() for engine in self.engines))

    async def generate(
        self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None = None
    ) -> list[JobResult]:
        """Generate ``jobs`` on an idle engine (the first if none is idle)."""
        if not self.engines:
            raise RuntimeError("the engine pool has no engines")
        idle = [engine for engine in self.engines if not engine.health().busy]
        return await (idle or self.engines)[0].generate(jobs, on_progress)

    async def cancel(self, job_id: str) -> bool:
        """Cancel the job on whichever engine holds it; False if none does."""
        held = await asyncio.gather(*(engine.cancel(job_id) for engine in self.engines))
        return any(held)

    def health(self) -> EngineHealth:
        """Every engine's health, combined (see :func:`combined_health`)."""
        return combined_health([engine.health() for engine in self.engines])


def as_pool(engine: EngineClient | EnginePool) -> EnginePool:
    """``engine`` itself if it is a pool, else a pool of that one engine."""
    return engine if isinstance(engine, EnginePool) else EnginePool([engine])
