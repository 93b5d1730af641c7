"""What the scheduler scenarios simulate: the real service on simulated engines, a standard load, job timelines.

The service and its journal (an SQLite file) are the real ones; the engines
are simulated, and time is whatever clock the service is given (virtual for
the long runs, the system's for the real-clock ones). The tiers, the job
sizes and the load of ``bench/scheduler.py`` (a flooder and light members)
are here too, as the other scenarios build on them.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.db import Database
from bot.scheduler.clock import Clock, VirtualClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings, TierSettings
from bot.scheduler.errors import DreamError, MemberQueueFull, QuotaExceeded
from bot.scheduler.events import EventKind
from bot.scheduler.models import DreamRequest, Member
from bot.scheduler.service import DreamService
from engine.pool import EnginePool
from engine.simulated import SimulatedEngine
from engine.types import GenerationParams

FLOODER = 1
GUILD = 1
SMALL = GenerationParams(width=512, height=512, steps=10)
LARGE = GenerationParams(width=768, height=768, steps=10)
UNCAPPED = {"max_queued_jobs": 1_000_000, "max_queued_jobs_per_server": 1_000_000}
SUPPORTER_ROLE = 10
TIER = TierSettings(burst=40, rate_per_hour=20_000, daily_images=100_000, max_images=4, max_queued=20)
QUOTAS = QuotaSettings(
    tiers={"default": TIER, "supporter": TIER.model_copy(update={"roles": (SUPPORTER_ROLE,), "weight": 2.0})}
)


@dataclass
class JobRecord:
    """One job: its member, their weight, its simulated GPU seconds and its times on the run's clock."""

    member: int
    weight: float
    gpu_seconds: float
    queued: float
    started: float | None = None
    finished: float | None = None


@dataclass
class Recorder:
    """Listens to the service's events and keeps each job's timeline."""

    jobs: dict[int, JobRecord] = field(default_factory=dict)
    finished_by_member: dict[int, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))

    async def listen(self, service: DreamService) -> None:
        with service.subscribe() as events:
            async for event in events:
                record = self.jobs.get(event.job_id)
                if record is None:
                    continue
                if event.kind is EventKind.STARTED and record.started is None:
                    record.started = event.at
                elif event.kind in (EventKind.DONE, EventKind.FAILED, EventKind.CANCELLED):
                    record.finished = event.at
                    self.finished_by_member[record.member].set()


def gpu_seconds(params: GenerationParams, images: int, seconds_per_step: float) -> float:
    """Simulated engine seconds of ``images`` images: ``seconds_per_step`` per step of 512x512, scaled by pixels."""
    return images * params.steps * params.width * params.height / (512 * 512) * seconds_per_step


async def open_service(path: Path, clock: Clock, seconds_per_step: float, engines: int = 1,
                       engine_type: type[SimulatedEngine] = SimulatedEngine,
                       **scheduler: object) -> DreamService:  # fmt: skip
    """The real service on ``clock`` with a simulated engine (``engines`` > 1: a pool of them, of ``engine_type``);
    without ``scheduler`` settings the queue caps are out of the way."""
    db = await Database.open(path)
    pool = [engine_type(seconds_per_step=seconds_per_step, max_batch_images=8, image_max_side=16, sleep=clock.sleep)
            for _ in range(engines)]
    for engine in pool:
        await engine.start()
    service = DreamService(
        db, pool[0] if engines == 1 else EnginePool(pool),
        scheduler=SchedulerSettings(**{**UNCAPPED, **scheduler}), quotas=QUOTAS, max_batch_images=8, clock=clock,
    )
    if isinstance(clock, VirtualClock):
        clock.settle_hook = service.journal.wait_idle
    return service


async def close_service(service: DreamService) -> None:
    """Stop the service without a grace period and close its journal."""
    await service.close(grace_s=0)
    await service.journal.db.close()


class Load:
    """The flooder and the light members, submitting into one service until ``end``.

    Light members come in two kinds of visit, at random times and from random
    members: a casual one (1 to 3 jobs at once, then gone) and an iterating one
    (for a few minutes, keeping up to two jobs in the queue, as someone trying
    prompt after prompt). Jobs have 1 to 4 images; a fifth of them are 768x768.
    """

    def __init__(self, service: DreamService, recorder: Recorder, rng: random.Random, members: int,
                 seconds_per_step: float, end: float) -> None:
        self.service, self.recorder, self.rng = service, recorder, rng
        self.members, self.seconds_per_step, self.end = members, seconds_per_step, end
        self.keys = 0
        self.refused: defaultdict[str, int] = defaultdict(int)

    def member(self, member_id: int) -> Member:
        """Every tenth member is a supporter (weight 2)."""
        return Member(member_id, role_ids=(SUPPORTER_ROLE,) if member_id % 10 == 0 else ())

    async def submit(self, member_id: int, images: int, params: GenerationParams) -> int:
        self.keys += 1
        member = self.member(member_id)
        request = DreamRequest(member, GUILD, "a lighthouse at dusk", tuple(range(images)), f"bench-{self.keys}", params)
        admission = await self.service.submit(request)
        weight = self.service.quota_status(GUILD, member).limits.weight
        self.recorder.jobs[admission.job.job_id] = JobRecord(
            member_id, weight, gpu_seconds(params, images, self.seconds_per_step), self.service.clock.now()
        )
        return admission.job.job_id

    def random_job(self) -> tuple[int, GenerationParams]:
        return self.rng.randint(1, 4), LARGE if self.rng.random() < 0.2 else SMALL

    async def flood(self) -> None:
        """Submit 4-image jobs as fast as allowed: wait for a job to finish when the queue cap is hit."""
        clock = self.service.clock
        finished = self.recorder.finished_by_member[FLOODER]
        while clock.now() < self.end:
            try:
                await self.submit(FLOODER, 4, SMALL)
            except MemberQueueFull:
                finished.clear()
                await finished.wait()
            except QuotaExceeded as refusal:
                await clock.sleep(refusal.reset_at - clock.now())

    async def light(self, casual_per_hour: float, iterating_per_hour: float, iterating_minutes: float) -> None:
        clock = self.service.clock
        visits = []
        rate = (casual_per_hour + iterating_per_hour) / 3600
        while clock.now() + (gap := self.rng.expovariate(rate)) < self.end:
            await clock.sleep(gap)
            member = self.rng.randint(2, self.members)
            if self.rng.random() < casual_per_hour / (casual_per_hour + iterating_per_hour):
                visit = self.casual(member)
            else:
                visit = self.iterate(member, clock.now() + self.rng.expovariate(1 / (iterating_minutes * 60)))
            visits.append(asyncio.create_task(visit))
        await asyncio.gather(*visits)

    async def casual(self, member: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            await self.try_submit(member)

    async def iterate(self, member: int, leave: float) -> None:
        finished = self.recorder.finished_by_member[member]
        waiting: set[int] = set()
        while self.service.clock.now() < min(leave, self.end):
            waiting = {job for job in waiting if self.recorder.jobs[job].finished is None}
            if len(waiting) < 2 and (job := await self.try_submit(member)) is not None:
                waiting.add(job)
            elif not waiting:  # refused with nothing queued: come back a little later
                await self.service.clock.sleep(min(60.0, max(0.0, self.end - self.service.clock.now())))
            else:
                finished.clear()
                await finished.wait()

    async def try_submit(self, member: int) -> int | None:
        try:
            return await self.submit(member, *self.random_job())
        except DreamError as refusal:
            self.refused[type(refusal).__name__] += 1
            return None
