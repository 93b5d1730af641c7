"""The beta scenario of ``bench/scheduler.py``: Stability's 2022 Discord beta on a pool of simulated H200s.

15,000 members in five servers (40, 25, 15, 10 and 10 % of them, equal
weights) ask for 23 images/s on average over a day, along a smooth daily
curve that peaks at 3 times the mean (``mean x (1/11 + 4/11 (1 + cos 2 pi t /
24 h)^3)``: mean 1, peak 3, trough 0.09). A tenth of the members are heavy
submitters (each asks 9 times as often as a light one: half of all jobs); a
tenth are supporters (the quotas' supporter tier, weight 2). Jobs are 1 to 4
images at 512x512, arriving as a Poisson process that follows the curve.

Each simulated engine has one H200's measured speed: the compiled engine made
7.67 images/s at its best batch on SD 1.5 at 512x512, 25 steps. The pool has
enough engines for the peak at most ``TARGET_BUSY`` busy. A day is 2 million
images, too many for the real service on two cores in minutes, so the run
covers a window of ``--beta-minutes`` centred on the peak (the busiest part
of the day), on the virtual clock; its first ``WARM_UP`` seconds are not
measured. Each job runs as ``STEPS`` coarser step of the same total time, so
the virtual clock stops less often; the scheduler sees the same images and
relative costs.

Printed: waits (admission to start) by class, median and p99; Jain's index of
the mean time from admission to images (wait + the batch's run) across servers
and across members with ``MEMBER_JOBS`` jobs measured (1.0: everyone waits alike; the
supporters' double weight lowers it by design when work queues). The engines
hand back one stock image per seed rather than drawing each (see
:class:`StampEngine`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path

from bench.simulation import SUPPORTER_ROLE, JobRecord, Recorder, close_service, gpu_seconds, open_service
from bench.stats import jain, percentile
from bot.scheduler.clock import VirtualClock
from bot.scheduler.errors import DreamError
from bot.scheduler.models import DreamRequest, Member
from bot.scheduler.service import DreamService
from engine.simulated import SimulatedEngine, draw_image
from engine.types import GeneratedImage, GenerationParams, JobRequest

MEMBERS = 15_000
MEAN_IMAGES_PER_S = 23.0
PEAK_RATIO = 3.0
H200_IMAGES_PER_S = 7.67
"""The compiled engine on one H200 at its best batch: SD 1.5, 512x512, 25 steps."""
TARGET_BUSY = 0.9
"""The pool is sized so that at the peak its engines are at most this busy."""
SERVER_SHARES = {301: 0.40, 302: 0.25, 303: 0.15, 304: 0.10, 305: 0.10}
HEAVY_EVERY, HEAVY_RATE = 10, 9.0
"""One member in ``HEAVY_EVERY`` submits ``HEAVY_RATE`` times as often as a light one."""
STEPS = 1
"""Steps each simulated job runs as: a 25-step job's time in one (every step is a stop of the virtual clock,
which costs the run's wall time several event-loop passes and the journal's settling)."""
PARAMS = GenerationParams(width=512, height=512, steps=STEPS)
MEAN_IMAGES_PER_JOB = 2.5
STAMP = draw_image(JobRequest("stamp", "a lighthouse at dusk", (0,), PARAMS), 0, 16)
WARM_UP = 120.0
MEMBER_JOBS = 3
"""Members count in Jain's index with at least this many jobs measured (one job's time is mostly its batch's)."""
DAY = 24 * 3600.0


def daily_curve(seconds_from_peak: float) -> float:
    """The arrival rate as a multiple of the day's mean: 3 at the peak, 1 on average, smooth, never below 0."""
    return 1 / 11 + 4 / 11 * (1 + math.cos(2 * math.pi * seconds_from_peak / DAY)) ** 3


def member_of(member_id: int) -> Member:
    """Every tenth member is a supporter (the supporter tier's role)."""
    return Member(member_id, role_ids=(SUPPORTER_ROLE,) if member_id % 10 == 0 else ())


def is_heavy(member_id: int) -> bool:
    """A tenth of the members, a tenth of the supporters among them."""
    return member_id // 10 % HEAVY_EVERY == 0


def server_of(member_id: int) -> int:
    """Members fill the servers in order of their shares."""
    edge = 0
    for guild, share in SERVER_SHARES.items():
        edge += round(share * MEMBERS)
        if member_id <= edge:
            return guild
    raise ValueError(f"member {member_id} is not one of the {MEMBERS}")


def class_of(member_id: int) -> str:
    return f"{'supporter' if member_id % 10 == 0 else 'default'}/{'heavy' if is_heavy(member_id) else 'light'}"


class StampEngine(SimulatedEngine):
    """The simulated engine with one stock picture for every image: drawing each (a few ms) would take most of
    the run's wall time and says nothing of the scheduler."""

    def _draw(self, jobs: list[JobRequest]) -> dict[str, tuple[GeneratedImage, ...]]:
        return {job.job_id: tuple(GeneratedImage(seed, STAMP) for seed in job.seeds) for job in jobs}


async def arrivals(service: DreamService, recorder: Recorder, rng: random.Random, start: float, end: float,
                   peak_at: float, seconds_per_step: float, jobs: dict[int, tuple[int, int]]) -> dict[str, int]:  # fmt: skip
    """Submit jobs from ``start`` to ``end`` as a Poisson process following the daily curve (by thinning), then
    wait until every one has ended. ``jobs`` gets each job's (server, images); returns the refusals by kind."""
    clock = service.clock
    members = range(1, MEMBERS + 1)
    odds = list(itertools.accumulate(HEAVY_RATE if is_heavy(member) else 1.0 for member in members))
    peak_jobs = MEAN_IMAGES_PER_S * PEAK_RATIO / MEAN_IMAGES_PER_JOB
    refused: defaultdict[str, int] = defaultdict(int)
    keys = itertools.count()
    submits: list[asyncio.Task[None]] = []

    async def submit(member_id: int, images: int) -> None:
        request = DreamRequest(member_of(member_id), server_of(member_id), "a lighthouse at dusk",
                               tuple(range(images)), f"beta-{next(keys)}", PARAMS)
        queued = clock.now()
        try:
            admission = await service.submit(request)
        except DreamError as refusal:
            refused[type(refusal).__name__] += 1
            return
        job_id = admission.job.job_id
        recorder.jobs[job_id] = JobRecord(member_id, 1.0, gpu_seconds(PARAMS, images, seconds_per_step), queued)
        jobs[job_id] = request.guild_id, images

    while (now := clock.now() + rng.expovariate(peak_jobs)) < end:
        await clock.sleep(now - clock.now())
        if rng.random() * PEAK_RATIO < daily_curve(now - peak_at):
            member = rng.choices(members, cum_weights=odds)[0]
            submits.append(asyncio.create_task(submit(member, rng.randint(1, 4))))
    await asyncio.gather(*submits)
    while any(job.finished is None for job in recorder.jobs.values()):  # the queue drains: every job starts
        await clock.sleep(10.0)
    return dict(refused)


async def beta(args: argparse.Namespace, folder: Path) -> None:
    """Run the beta's window around the peak and print the pool's size, the waits by class and Jain's indices."""
    peak = MEAN_IMAGES_PER_S * PEAK_RATIO
    engines = math.ceil(peak / (H200_IMAGES_PER_S * TARGET_BUSY))
    seconds_per_step = 1 / (H200_IMAGES_PER_S * STEPS)  # per image step at 512x512
    clock = VirtualClock()
    service = await open_service(folder / "beta.db", clock, seconds_per_step, engines=engines,
                                 engine_type=StampEngine)
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    start = clock.now()
    window = args.beta_minutes * 60
    end = start + window
    jobs: dict[int, tuple[int, int]] = {}
    wall = time.perf_counter()
    refused = await clock.run(arrivals(service, recorder, random.Random(args.seed), start, end,
                                       start + window / 2, seconds_per_step, jobs))  # fmt: skip
    wall = time.perf_counter() - wall
    listener.cancel()
    await close_service(service)

    print(f"beta: {MEMBERS:,} members in {len(SERVER_SHARES)} servers, {MEAN_IMAGES_PER_S:g} images/s a day on "
          f"average, peak {PEAK_RATIO:g}x = {peak:g} images/s = {peak / H200_IMAGES_PER_S:.2f} H200s at "
          f"{H200_IMAGES_PER_S:g} images/s -> {engines} simulated engines (at most {TARGET_BUSY:.0%} busy at the "
          f"peak)")
    measured = {job_id: job for job_id, job in recorder.jobs.items()
                if job.queued >= start + WARM_UP and job.started is not None and job.finished is not None}
    images = sum(jobs[job_id][1] for job_id in measured)
    print(f"  simulated {args.beta_minutes:g} min around the daily peak (not the whole day) in {wall:.1f} s wall: "
          f"{len(recorder.jobs):,} jobs; measured after a {WARM_UP:g} s warm-up: {len(measured):,} jobs, "
          f"{images / (window - WARM_UP):.1f} images/s asked; refused: {refused or 'none'}")
    waits: defaultdict[str, list[float]] = defaultdict(list)
    for job in measured.values():
        waits[class_of(job.member)].append(job.started - job.queued)
        waits["all"].append(job.started - job.queued)
    for who in ["all", *sorted(set(waits) - {"all"})]:
        print(f"  {who:17s} wait to start: median {statistics.median(waits[who]):6.2f} s, "
              f"p99 {percentile(waits[who], 0.99):6.2f} s ({len(waits[who]):,} jobs)")
    by_server: defaultdict[int, list[float]] = defaultdict(list)
    by_member: defaultdict[int, list[float]] = defaultdict(list)
    for job_id, job in measured.items():
        by_server[jobs[job_id][0]].append(job.finished - job.queued)
        by_member[job.member].append(job.finished - job.queued)
    servers = [statistics.fmean(seconds) for seconds in by_server.values()]
    members = [statistics.fmean(seconds) for seconds in by_member.values() if len(seconds) >= MEMBER_JOBS]
    print(f"  Jain's index of the mean time from admission to images: servers {jain(servers):.4f} ({len(servers)}), "
          f"members with {MEMBER_JOBS}+ jobs measured {jain(members):.4f} ({len(members):,})")
