"""The engines scenario of ``bench/scheduler.py``: one fair queue feeding a pool of N simulated engines.

For each pool size N (virtual clock; the real service, journal and simulated
engines): four servers of 4N members (as many members per engine at every N),
the last server with weight 2, every tenth member a supporter (tier weight
2). Every member keeps three jobs queued (1 to 4 images, a fifth of them
768x768), submitting the next as soon as one finishes, so every engine always
has work. After a warm-up minute, for ``--engine-seconds`` simulated seconds:

- throughput: GPU work done per simulated second (in seconds of one engine's
  work, so 1.0 is one engine busy all the time) and images finished per
  second; the work's ratio to N times one engine's (N = 1 is run first when
  not asked for);
- Jain's index of GPU time over each member's due share (server weight times
  tier weight, shared inside the server), and of GPU time / server weight
  among the servers, over the measured time (every member is backlogged
  throughout).

With ``--ray`` (small N: it runs on two cores) the engines are simulated
engines as actors on a local Ray cluster, on the real clock and
``RAY_SPEEDUP`` times faster; the figures then include Ray's and the real
event loop's costs between batches.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

from bench.simulation import (
    LARGE,
    QUOTAS,
    SMALL,
    SUPPORTER_ROLE,
    JobRecord,
    Recorder,
    close_service,
    gpu_seconds,
    open_service,
)
from bench.stats import jain, windowed_jain
from bot.db import Database
from bot.scheduler.clock import SystemClock, VirtualClock
from bot.scheduler.config import SchedulerSettings
from bot.scheduler.models import DreamRequest, Member
from bot.scheduler.service import DreamService
from engine.config import EngineSettings, PoolSettings, RaySettings
from engine.ray_pool import RayPool

SERVER_WEIGHTS = {201: 1.0, 202: 1.0, 203: 1.0, 204: 2.0}
MEMBERS_PER_ENGINE = 4
"""Members in each server for each engine of the pool."""
DEPTH = 3
WARM_UP = 60.0
RAY_SPEEDUP = 10.0
"""With ``--ray``: steps, warm-up and measured time are this many times shorter, so a run takes seconds."""


def member_of(guild: int, index: int) -> Member:
    member_id = guild * 1000 + index
    return Member(member_id, role_ids=(SUPPORTER_ROLE,) if index % 10 == 0 else ())


async def open_ray_service(path: Path, seconds_per_step: float, engines: int) -> tuple[DreamService, RayPool]:
    """The real service on the real clock, with ``engines`` simulated engines as actors on the Ray cluster."""
    pool = RayPool(EngineSettings(
        simulated=True, simulated_seconds_per_step=seconds_per_step, max_batch_images=8, backend="ray",
        pool=PoolSettings(min_engines=engines, max_engines=engines), ray=RaySettings(num_gpus=0, num_cpus=0.1),
    ))
    await pool.start()
    db = await Database.open(path)
    service = DreamService(db, pool, scheduler=SchedulerSettings(max_queued_jobs=1_000_000), quotas=QUOTAS,
                           max_batch_images=8, clock=SystemClock())
    return service, pool


async def run(engines: int, args: argparse.Namespace, folder: Path) -> tuple[float, float, float, float, float]:
    """One pool size: (GPU work per second, images per second, member Jain, server Jain, wall seconds)."""
    # With --ray the engines are actors and time is real: everything runs RAY_SPEEDUP times faster.
    speedup = RAY_SPEEDUP if args.ray else 1.0
    seconds_per_step = args.seconds_per_step / speedup
    clock: VirtualClock | SystemClock = SystemClock() if args.ray else VirtualClock()
    pool = None
    if args.ray:
        service, pool = await open_ray_service(folder / f"ray-{engines}.db", seconds_per_step, engines)
    else:
        service = await open_service(folder / f"engines-{engines}.db", clock, seconds_per_step, engines=engines)
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    for guild, weight in SERVER_WEIGHTS.items():
        await service.set_server_weight(0, guild, weight)
    warm = clock.now() + WARM_UP / speedup
    end = warm + args.engine_seconds / speedup
    rng = random.Random(args.seed)
    keys = itertools.count()
    guild_of: dict[int, int] = {}
    images_of: dict[int, int] = {}
    total_weight = sum(SERVER_WEIGHTS.values())

    async def keep_busy(guild: int, member: Member, share: float) -> None:
        finished = recorder.finished_by_member[member.id]
        mine: set[int] = set()
        while clock.now() < end:
            mine = {job for job in mine if recorder.jobs[job].finished is None}
            if len(mine) >= DEPTH:
                finished.clear()
                await finished.wait()
                continue
            images, params = rng.randint(1, 4), LARGE if rng.random() < 0.2 else SMALL
            admission = await service.submit(DreamRequest(
                member, guild, "a lighthouse at dusk", tuple(range(images)), f"pool-{next(keys)}", params))
            job_id = admission.job.job_id
            recorder.jobs[job_id] = JobRecord(member.id, share, gpu_seconds(params, images, seconds_per_step),
                                              clock.now())
            guild_of[job_id], images_of[job_id] = guild, images
            mine.add(job_id)

    visits = []
    for guild, weight in SERVER_WEIGHTS.items():
        members = [member_of(guild, index) for index in range(1, MEMBERS_PER_ENGINE * engines + 1)]
        tiers = [QUOTAS.tiers["supporter" if member.role_ids else "default"].weight for member in members]
        visits += [keep_busy(guild, member, weight / total_weight * tier / sum(tiers))
                   for member, tier in zip(members, tiers, strict=True)]
    wall = time.perf_counter()
    await (asyncio.gather(*visits) if isinstance(clock, SystemClock) else clock.run(asyncio.gather(*visits)))
    wall = time.perf_counter() - wall
    listener.cancel()
    await close_service(service)
    if pool is not None:
        await pool.close()

    images = sum(images_of[job_id] for job_id, job in recorder.jobs.items()
                 if job.finished is not None and warm <= job.finished < end)
    member_jain, _, _, _ = windowed_jain(recorder.jobs, warm, end, end - warm)
    served: defaultdict[int, float] = defaultdict(float)
    for job_id, job in recorder.jobs.items():
        if job.started is not None and job.finished is not None and job.finished > job.started:
            overlap = min(job.finished, end) - max(job.started, warm)
            if overlap > 0:  # a job's GPU time spread evenly over the batch that ran it
                served[guild_of[job_id]] += job.gpu_seconds * overlap / (job.finished - job.started)
    server_jain = jain([served[guild] / weight for guild, weight in SERVER_WEIGHTS.items()])
    # Work in seconds of one engine at the benchmark's own pace, images per second of that pace.
    return sum(served.values()) / (end - warm), images / (end - warm) / speedup, member_jain, server_jain, wall


async def engines(args: argparse.Namespace, folder: Path) -> None:
    """Print one line per pool size of ``--engines``."""
    sizes = sorted(int(size) for size in args.engines.split(","))
    baseline: float | None = None
    if args.ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level=logging.WARNING)
    where = f"as Ray actors, real time {RAY_SPEEDUP:g} times faster" if args.ray else "simulated"
    print(f"engines: {len(SERVER_WEIGHTS)} servers x {MEMBERS_PER_ENGINE} members per engine keeping {DEPTH} jobs "
          f"queued, {args.engine_seconds:g} s {where} after a {WARM_UP:g} s warm-up")
    for size in ([1] if 1 not in sizes else []) + sizes:
        work, images, member_jain, server_jain, wall = await run(size, args, folder)
        if baseline is None:
            baseline = work
        if size in sizes:
            print(f"  {size:3d} engines: work {work:6.2f} engine-s/s = {work / (size * baseline):.3f} of {size} x one "
                  f"engine's, {images:6.2f} images/s; Jain: members {member_jain:.4f}, servers {server_jain:.4f} "
                  f"({wall:.1f} s wall)")
    if args.ray:
        ray.shutdown()
