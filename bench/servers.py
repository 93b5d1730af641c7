"""The servers scenario of ``bench/scheduler.py``: fairness between servers sharing one GPU.

Three servers with equal weights, for one simulated hour (virtual clock, the
real service, journal and simulated engine):

- a big server of 500 members who all flood: each keeps a 4-image job queued,
  submitting the next as soon as one finishes (the queue caps are the
  config's defaults, so the big server fills its share of the queue and its
  members told it is full come back when the refusal says);
- a small busy server: 3 members who each keep two jobs queued;
- a small quiet server: 20 members who come by now and then (1 to 3 jobs of
  1 to 4 images, a fifth of them 768x768).

Printed: Jain's index of GPU time / server weight among the servers
backlogged through each 60 s window (mean and minimum), and the small
servers' median wait (admission to start) against the same quiet server's
median wait when it has the GPU to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

from bench.simulation import LARGE, SMALL, JobRecord, Recorder, close_service, gpu_seconds, open_service
from bench.stats import windowed_jain
from bot.scheduler.clock import VirtualClock
from bot.scheduler.config import SchedulerSettings
from bot.scheduler.errors import DreamError, MemberQueueFull, QueueFull, QuotaExceeded, ServerQueueFull
from bot.scheduler.models import DreamRequest, Member
from bot.scheduler.service import DreamService
from engine.types import GenerationParams

BIG, BUSY, QUIET = 101, 102, 103
BATCH_IMAGES = 8


class ServersLoad:
    """Submits the three servers' jobs into one service until ``end``; records each job under its server."""

    def __init__(self, service: DreamService, recorder: Recorder, rng: random.Random, seconds_per_step: float,
                 end: float) -> None:  # fmt: skip
        self.service, self.recorder, self.rng = service, recorder, rng
        self.seconds_per_step, self.end = seconds_per_step, end
        self.keys = 0
        self.guild_of: dict[int, int] = {}
        self.refused: dict[str, int] = {}

    async def submit(self, guild: int, member: int, images: int, params: GenerationParams) -> int:
        self.keys += 1
        request = DreamRequest(Member(member), guild, "a lighthouse at dusk", tuple(range(images)),
                               f"servers-{self.keys}", params)
        admission = await self.service.submit(request)
        job_id = admission.job.job_id
        # The recorder groups by its ``member`` field: here the key is the member in their server.
        self.recorder.jobs[job_id] = JobRecord(
            guild * 1_000_000 + member, 1.0, gpu_seconds(params, images, self.seconds_per_step),
            self.service.clock.now(),
        )
        self.guild_of[job_id] = guild
        return job_id

    async def keep_queued(self, guild: int, member: int, jobs: int, images: int) -> None:
        """Keep ``jobs`` of ``images`` small images queued: submit again as soon as one finishes."""
        clock = self.service.clock
        finished = self.recorder.finished_by_member[guild * 1_000_000 + member]
        waiting: set[int] = set()
        while clock.now() < self.end:
            waiting = {job for job in waiting if self.recorder.jobs[job].finished is None}
            if len(waiting) < jobs:
                try:
                    waiting.add(await self.submit(guild, member, images, SMALL))
                    continue
                except QuotaExceeded as refusal:
                    await clock.sleep(refusal.reset_at - clock.now())
                    continue
                except (ServerQueueFull, QueueFull) as refusal:
                    name = type(refusal).__name__
                    self.refused[name] = self.refused.get(name, 0) + 1
                    await clock.sleep(refusal.minutes * 60)
                    continue
                except MemberQueueFull:
                    pass
            finished.clear()
            await finished.wait()

    async def visits(self, guild: int, members: int, per_hour: float) -> None:
        """Casual visits at random: a member submits 1 to 3 jobs at once, then leaves."""
        clock = self.service.clock
        tasks = []
        while clock.now() + (gap := self.rng.expovariate(per_hour / 3600)) < self.end:
            await clock.sleep(gap)
            member = self.rng.randint(1, members)
            tasks.append(asyncio.create_task(self.visit(guild, member)))
        await asyncio.gather(*tasks)

    async def visit(self, guild: int, member: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            params = LARGE if self.rng.random() < 0.2 else SMALL
            try:
                await self.submit(guild, member, self.rng.randint(1, 4), params)
            except DreamError as refusal:
                name = type(refusal).__name__
                self.refused[name] = self.refused.get(name, 0) + 1


async def simulate(args: argparse.Namespace, path: Path, *, crowd: bool) -> tuple[Recorder, ServersLoad, float]:
    """One simulated hour: the quiet server alone, or (``crowd``) with the big and the busy server too."""
    clock = VirtualClock()
    caps = SchedulerSettings().model_dump(include={"max_queued_jobs", "max_queued_jobs_per_server"})
    service = await open_service(path, clock, args.seconds_per_step, **caps)
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    end = clock.now() + args.hours * 3600
    load = ServersLoad(service, recorder, random.Random(args.seed), args.seconds_per_step, end)
    work = [load.visits(QUIET, 20, args.quiet_visits)]
    if crowd:
        work += [load.keep_queued(BIG, member, 1, 4) for member in range(1, 501)]
        work += [load.keep_queued(BUSY, member, 2, 2) for member in range(1, 4)]
    wall = time.perf_counter()
    await clock.run(asyncio.gather(*work))
    wall = time.perf_counter() - wall
    listener.cancel()
    await close_service(service)
    return recorder, load, wall


def waits(recorder: Recorder, load: ServersLoad, guild: int, since: float) -> list[float]:
    return [job.started - job.queued for job_id, job in recorder.jobs.items()
            if load.guild_of[job_id] == guild and job.queued >= since and job.started is not None]


async def servers(args: argparse.Namespace, folder: Path) -> None:
    """Run the scenario and print its figures."""
    alone, alone_load, _ = await simulate(args, folder / "servers-alone.db", crowd=False)
    recorder, load, wall = await simulate(args, folder / "servers.db", crowd=True)
    begin = min(job.queued for job in recorder.jobs.values())
    warm = begin + min(600.0, args.hours * 360)
    end = begin + args.hours * 3600
    by_server = {
        job_id: JobRecord(load.guild_of[job_id], 1.0, job.gpu_seconds, job.queued, job.started, job.finished)
        for job_id, job in recorder.jobs.items()
    }
    mean_jain, min_jain, per_window, windows = windowed_jain(by_server, warm, end, args.window)
    batch = BATCH_IMAGES * SMALL.steps * args.seconds_per_step
    idle = statistics.median(waits(alone, alone_load, QUIET, warm))
    jobs = {guild: sum(1 for g in load.guild_of.values() if g == guild) for guild in (BIG, BUSY, QUIET)}
    print(f"servers: 3 servers (500 flooding members, 3 busy, 20 quiet), weights equal, {args.hours:g} h "
          f"simulated in {wall:.1f} s wall, jobs {jobs[BIG]}/{jobs[BUSY]}/{jobs[QUIET]}, "
          f"refused: {load.refused or 'none'}")
    print(f"  Jain's index of GPU time / weight across servers over {args.window:g} s windows: mean {mean_jain:.4f}, "
          f"min {min_jain:.4f} ({windows} windows, {per_window:.1f} backlogged servers each)")
    for name, guild in (("quiet", QUIET), ("busy", BUSY)):
        print(f"  {name} server wait to start: median {statistics.median(waits(recorder, load, guild, warm)):5.1f} s")
    print(f"  quiet server alone on an idle GPU: median {idle:5.1f} s; one batch of {BATCH_IMAGES} small images "
          f"is {batch:.1f} s")
