"""A scheduler on a virtual clock with the simulated engine (or a pool of them) and a real SQLite file, for the
scheduler tests."""

from __future__ import annotations

from pathlib import Path

from bot.db import Database
from bot.scheduler.clock import VirtualClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings, TierSettings
from bot.scheduler.events import EventKind, JobEvent
from bot.scheduler.models import Admission, DreamRequest, Member
from bot.scheduler.modes import RelaxTermsOf
from bot.scheduler.service import DreamService
from engine.pool import EnginePool
from engine.simulated import SimulatedEngine
from engine.types import GenerationParams, Limits

GENEROUS = TierSettings(burst=1000, rate_per_hour=100_000, daily_images=100_000, max_images=9, max_queued=100)
"""A tier whose quotas never get in the way, for tests about something else."""
GUILD = 1
"""The server the tests' jobs come from unless they say otherwise."""


class Harness:
    """One bot "process": database, simulated engine (``engines`` > 1: a pool of them; ``models``: the ones
    offered besides the default) and service;
    :meth:`restart` starts a fresh one."""

    def __init__(
        self, path: Path, clock: VirtualClock, scheduler: SchedulerSettings, quotas: QuotaSettings,
        *, max_batch_images: int = 8, seconds_per_step: float = 0.1, engines: int = 1,
        relax_terms: RelaxTermsOf | None = None, models: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.clock = clock
        self.scheduler = scheduler
        self.quotas = quotas
        self.max_batch_images = max_batch_images
        self.seconds_per_step = seconds_per_step
        self.engine_count = engines
        self.relax_terms = relax_terms
        self.models = models
        self.events: list[JobEvent] = []
        self.keys = 0

    async def start(self) -> DreamService:
        self.db = await Database.open(self.path)
        self.engines = [self.simulated_engine() for _ in range(self.engine_count)]
        self.engine = self.engines[0]
        self.pool = EnginePool(self.engines) if self.engine_count > 1 else None
        for engine in self.engines:
            await engine.start()
        self.service = DreamService(
            self.db, self.pool or self.engine, scheduler=self.scheduler, quotas=self.quotas,
            max_batch_images=self.max_batch_images, clock=self.clock, relax_terms=self.relax_terms,
        )
        self.clock.settle_hook = self.service.journal.wait_idle
        self.subscription = self.service.subscribe()
        await self.service.start()
        await self.clock.settle()
        return self.service

    def simulated_engine(self) -> SimulatedEngine:
        """A simulated engine on the harness's clock (not started)."""
        return SimulatedEngine(
            seconds_per_step=self.seconds_per_step, max_batch_images=self.max_batch_images, sleep=self.clock.sleep,
            limits=Limits(models=self.models),
        )

    async def stop(self, grace_s: float = 0.0) -> None:
        await self.clock.run(self.service.close(grace_s))  # the grace period passes on the virtual clock
        await self.db.close()
        self.collect()

    async def restart(self, grace_s: float = 0.0) -> DreamService:
        await self.stop(grace_s)
        return await self.start()

    def collect(self) -> list[JobEvent]:
        """Move every event published so far into :attr:`events`; return the new ones."""
        new = []
        while (event := self.subscription.get_nowait()) is not None:
            new.append(event)
        self.events.extend(new)
        return new

    def kinds(self, job_id: int) -> list[EventKind]:
        self.collect()
        return [event.kind for event in self.events if event.job_id == job_id]

    async def submit(
        self, member: int | Member, images: int = 1, *, key: str | None = None, steps: int = 10,
        width: int = 512, height: int = 512, prompt: str = "a lighthouse", guild: int = GUILD, model: str = "",
    ) -> Admission:
        self.keys += 1
        member = member if isinstance(member, Member) else Member(member)
        return await self.service.submit(
            DreamRequest(
                member=member, guild_id=guild, prompt=prompt, seeds=tuple(range(images)),
                idempotency_key=key or f"key-{self.keys}",
                params=GenerationParams(width=width, height=height, steps=steps, model=model), channel_id=2,
            )
        )

    def _busy(self) -> bool:
        return self.service.pending() > 0

    async def drain(self, limit: float = 10_000) -> None:
        """Advance time until nothing is queued or running (or ``limit`` seconds pass)."""
        deadline = self.clock.now() + limit
        while self._busy() and self.clock.now() < deadline:
            if not await self.clock.step():
                break


def settings(**tier: object) -> tuple[SchedulerSettings, QuotaSettings]:
    return SchedulerSettings(), QuotaSettings(tiers={"default": GENEROUS.model_copy(update=tier)})


