"""Benchmark the fair scheduler with the simulated engine: fairness, waits, duty cycle, admission throughput.

    python bench/scheduler.py [--members 1000] [--hours 1] [--admissions 20000] [--seed 1]
                              [--scenarios members,duty,admission,servers]
    python bench/scheduler.py --engines 1,2,4,8,16 [--engine-seconds 600] [--ray]
    python bench/scheduler.py --scenarios beta [--beta-minutes 30]
    python bench/scheduler.py --scenarios models [--swap-seconds 10] [--models-minutes 30]

1. Fairness (virtual clock, so an hour of queueing runs in well under a minute):
   one flooder keeps its queue full (20 jobs of 4 images, resubmitting as fast
   as its quota and queue cap allow) while 999 light members arrive at random
   in sessions of a few jobs, together asking for about 60 % of the GPU. The
   real service, journal (SQLite file) and simulated engine run; only time is
   virtual. Printed: GPU duty cycle while work waits, Jain's index of GPU time
   (divided by weight) among the members backlogged through each window, and
   the light members' median and p99 wait (admission to start) against the
   flooder's.
2. Duty cycle on the real clock: the same kind of load for a few wall-clock
   seconds with short steps, so the scheduler's own work between batches
   (journal writes, events, picking) shows up as idle GPU time.
3. Admission throughput (real clock): submits through quota check, group-
   committed journal write and enqueue, with many submits in flight as when
   many members press /dream at once; with SQLite ``synchronous=NORMAL`` (the
   bot's setting: durable against a crash of the bot) and ``FULL`` (durable
   against power loss too, one fsync per group commit).
4. Servers (virtual clock): fairness between servers, one of 500 flooding
   members and two small ones (see ``bench/servers.py``).
5. Engines (virtual clock, ``--engines``): a pool of N simulated engines under
   a load that keeps them all busy: throughput against N times one engine's,
   Jain's index among members and among servers (see ``bench/pool.py``);
   with ``--ray``, the engines as actors on a local Ray cluster (real clock).
6. Beta (virtual clock, ``--scenarios beta``): Stability's 2022 Discord beta,
   15,000 members asking 23 images/s on average with a daily peak of 3 times
   that, on enough simulated H200s for the peak; waits by member class and
   Jain's index across servers and members (see ``bench/beta.py``).
7. Models (virtual clock, ``--scenarios models``): two members on two models
   of one engine whose swaps take time; swaps, throughput and fairness with
   and without keeping the loaded model (see ``bench/models.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path and bench/engine.py would shadow the engine package.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import defaultdict

from bench.beta import beta
from bench.models import models
from bench.pool import engines
from bench.servers import servers
from bench.simulation import FLOODER, GUILD, SMALL, Load, Recorder, close_service, open_service
from bench.stats import percentile, windowed_jain
from bot.scheduler.clock import SystemClock, VirtualClock
from bot.scheduler.models import DreamRequest, Member


async def fairness(args: argparse.Namespace, folder: Path) -> None:
    clock = VirtualClock()
    service = await open_service(folder / "fairness.db", clock, args.seconds_per_step)
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    begin = clock.now()
    end = begin + args.hours * 3600
    load = Load(service, recorder, random.Random(args.seed), args.members, args.seconds_per_step, end)
    wall = time.perf_counter()
    await clock.run(asyncio.gather(load.flood(), load.light(args.casual, args.iterating, args.iterating_minutes)))
    stats = service.stats(GUILD)
    wall = time.perf_counter() - wall
    listener.cancel()
    await close_service(service)

    warm = begin + min(600.0, args.hours * 360)  # the first ten minutes (a tenth of short runs) fill the queue
    measured = [job for job in recorder.jobs.values() if job.queued >= warm and job.started is not None]
    waits = defaultdict(list)
    for job in measured:
        waits["flooder" if job.member == FLOODER else "light"].append(job.started - job.queued)
    mean_jain, min_jain, members_per_window, windows = windowed_jain(recorder.jobs, warm, end, args.window)
    light_gpu = sum(j.gpu_seconds for j in measured if j.member != FLOODER and j.finished is not None)
    print(f"fairness: {args.members} members, {args.hours:g} h simulated in {wall:.1f} s wall, "
          f"{len(recorder.jobs)} jobs, {stats.engine['extra']['batches']:.0f} batches, "
          f"light members used {light_gpu / (end - warm):.0%} of the GPU, refused: {dict(load.refused) or 'none'}")
    print(f"  GPU duty cycle while work waits: {stats.duty_cycle:.2%} (engine busy / time with work queued or running)")
    print(f"  Jain's index of GPU time / weight over {args.window:g} s windows: mean {mean_jain:.3f}, "
          f"min {min_jain:.3f} ({windows} windows, {members_per_window:.1f} backlogged members each)")
    for who in ("light", "flooder"):
        print(f"  {who:8s} wait to start: median {statistics.median(waits[who]):6.1f} s, "
              f"p99 {percentile(waits[who], 0.99):6.1f} s ({len(waits[who])} jobs)")


async def real_clock_duty(args: argparse.Namespace, folder: Path) -> None:
    clock = SystemClock()
    seconds_per_step = 0.002  # a batch of 8 small images: 0.16 s, so scheduling gaps would show
    service = await open_service(folder / "duty.db", clock, seconds_per_step)
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    end = clock.now() + args.real_seconds
    load = Load(service, recorder, random.Random(args.seed), 200, seconds_per_step, end)
    speedup = args.seconds_per_step / seconds_per_step
    await asyncio.gather(
        load.flood(), load.light(args.casual * speedup, args.iterating * speedup, args.iterating_minutes / speedup)
    )
    stats = service.stats(GUILD)
    engine_compute = stats.engine["extra"]["busy_seconds"]
    listener.cancel()
    await close_service(service)
    print(f"real-clock duty cycle: {args.real_seconds:g} s, {stats.engine['extra']['batches']:.0f} batches of "
          f"about {8 * SMALL.steps * seconds_per_step:.2f} s: engine.generate running {stats.duty_cycle:.2%} of the "
          f"time work waited; simulated compute alone {engine_compute / stats.backlog_seconds:.2%}")


async def admission(args: argparse.Namespace, folder: Path, concurrency: int, synchronous: str) -> float:
    service = await open_service(folder / f"admit-{concurrency}-{synchronous}.db", SystemClock(), 1.0)
    await service.journal.db.conn.execute(f"PRAGMA synchronous = {synchronous}")
    await service.start()
    await service.pause(actor_id=0)  # measure admission alone: nothing is dispatched
    requests = [
        DreamRequest(Member(2 + i % args.members), GUILD, "a lighthouse at dusk", (i % 7,), f"admit-{i}", SMALL)
        for i in range(args.admissions)
    ]
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:
            await service.submit(request)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    assert service.queue_summary(GUILD).queued_jobs == args.admissions
    await close_service(service)
    return args.admissions / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=1.0, help="simulated time of the fairness run")
    parser.add_argument("--seconds-per-step", type=float, default=0.04, help="simulated engine, 512x512 image step")
    parser.add_argument("--window", type=float, default=60.0, help="Jain's index window (simulated seconds)")
    parser.add_argument("--casual", type=float, default=180, help="casual visits (1 to 3 jobs) an hour")
    parser.add_argument("--iterating", type=float, default=60, help="iterating visits an hour")
    parser.add_argument("--iterating-minutes", type=float, default=5, help="mean length of an iterating visit")
    parser.add_argument("--real-seconds", type=float, default=10.0, help="length of the real-clock duty run")
    parser.add_argument("--admissions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-visits", type=float, default=120, help="visits an hour to the quiet server")
    parser.add_argument("--engine-seconds", type=float, default=600.0, help="measured time of each engines run")
    parser.add_argument("--ray", action="store_true", help="engines scenario: the engines as actors on a local Ray "
                        "cluster, on the real clock (small N)")
    parser.add_argument("--beta-minutes", type=float, default=10.0, help="beta scenario: simulated minutes "
                        "around the daily peak")
    parser.add_argument("--swap-seconds", type=float, default=10.0, help="models scenario: a model swap's time")
    parser.add_argument("--models-minutes", type=float, default=30.0, help="models scenario: simulated minutes")
    parser.add_argument("--engines", help="pool sizes of the engines scenario, comma-separated (e.g. 1,2,4,8,16)")
    parser.add_argument("--scenarios", help="which to run, comma-separated "
                        "(default: members,duty,admission,servers; engines alone with --engines)")
    args = parser.parse_args()
    scenarios = set((args.scenarios or ("engines" if args.engines else "members,duty,admission,servers")).split(","))
    with tempfile.TemporaryDirectory() as folder:
        if "members" in scenarios:
            await fairness(args, Path(folder))
        if "duty" in scenarios:
            await real_clock_duty(args, Path(folder))
        if "admission" in scenarios:
            for synchronous in ("NORMAL", "FULL"):
                for concurrency in (1, 64, 512):
                    rate = await admission(args, Path(folder), concurrency, synchronous)
                    print(f"admission: {rate:8,.0f} jobs/s  ({args.admissions} jobs, {concurrency} in flight, "
                          f"synchronous={synchronous})")
        if "servers" in scenarios:
            await servers(args, Path(folder))
        if "engines" in scenarios:
            await engines(args, Path(folder))
        if "beta" in scenarios:
            await beta(args, Path(folder))
        if "models" in scenarios:
            await models(args, Path(folder))


if __name__ == "__main__":
    asyncio.run(main())
