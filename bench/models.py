"""The models scenario of ``bench/scheduler.py``: two models on one engine, and what keeping the loaded one buys.

One simulated engine that spends ``--swap-seconds`` whenever a batch needs the
other model than the one it has loaded; two members with equal weights keep
four 4-image jobs queued each, one on model ``a``, the other on ``b``, for
``--models-minutes`` simulated minutes (virtual clock, the real service and
journal). Run with ``scheduler.model_switch_cost_s`` 0 (the fairest job
always first) and equal to the swap time. Printed: swaps against batches,
images a minute, member a's share of the GPU time spent generating, and the
largest lead either member took over the other in generating time.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.simulation import GUILD, SMALL, JobRecord, Recorder, close_service, gpu_seconds, open_service
from bot.scheduler.clock import VirtualClock
from bot.scheduler.errors import MemberQueueFull, QuotaExceeded
from bot.scheduler.models import DreamRequest, Member
from bot.scheduler.service import DreamService
from engine.simulated import SimulatedEngine
from engine.types import JobRequest, JobResult, Limits, ProgressCallback

MODELS = {1: "a", 2: "b"}
"""Each member's model."""


def swapping_engine(swap_seconds: float, made: list[SimulatedEngine]) -> type[SimulatedEngine]:
    """A simulated engine that holds one model and spends ``swap_seconds`` loading another when a batch needs it;
    each one made is added to ``made``."""

    class SwappingEngine(SimulatedEngine):
        def __init__(self, **settings: object) -> None:
            super().__init__(limits=Limits(models=tuple(MODELS.values())), **settings)  # type: ignore[arg-type]
            self.loaded = ""
            self.swaps = 0
            made.append(self)

        async def generate(self, jobs: Sequence[JobRequest],
                           on_progress: ProgressCallback | None = None) -> list[JobResult]:  # fmt: skip
            if jobs and jobs[0].params.model != self.loaded:
                self.swaps += bool(self.loaded)  # loading the first model is not a swap (it costs the same)
                self.loaded = jobs[0].params.model
                await self._sleep(swap_seconds)
            return await super().generate(jobs, on_progress)

    return SwappingEngine


async def keep_queued(service: DreamService, recorder: Recorder, member: int, seconds_per_step: float,
                      end: float) -> None:  # fmt: skip
    """Keep the member's queue full of 4-image jobs on its model until ``end``."""
    clock, params = service.clock, replace(SMALL, model=MODELS[member])
    finished = recorder.finished_by_member[member]
    keys = 0
    while clock.now() < end:
        keys += 1
        request = DreamRequest(Member(member), GUILD, "a lighthouse", tuple(range(4)), f"models-{member}-{keys}",
                               params)  # fmt: skip
        try:
            admission = await service.submit(request)
        except MemberQueueFull:
            finished.clear()
            await finished.wait()
            continue
        except QuotaExceeded as refusal:
            await clock.sleep(refusal.reset_at - clock.now())
            continue
        recorder.jobs[admission.job.job_id] = JobRecord(member, 1.0, gpu_seconds(params, 4, seconds_per_step),
                                                        clock.now())  # fmt: skip


async def run(args: argparse.Namespace, path: Path, switch_cost_s: float) -> None:
    clock, made = VirtualClock(), []
    service = await open_service(path, clock, args.seconds_per_step,
                                 engine_type=swapping_engine(args.swap_seconds, made),
                                 model_switch_cost_s=switch_cost_s)  # fmt: skip
    (engine,) = made
    recorder = Recorder()
    listener = asyncio.create_task(recorder.listen(service))
    await service.start()
    began = clock.now()
    end = began + args.models_minutes * 60
    await clock.run(asyncio.gather(*(keep_queued(service, recorder, member, args.seconds_per_step, end)
                                     for member in MODELS)))  # fmt: skip
    listener.cancel()
    await close_service(service)
    done = sorted((record for record in recorder.jobs.values() if record.finished is not None),
                  key=lambda record: record.started or 0.0)
    served, lowest, highest = {1: 0.0, 2: 0.0}, 0.0, 0.0
    for record in done:
        served[record.member] += record.gpu_seconds
        lowest, highest = min(lowest, served[1] - served[2]), max(highest, served[1] - served[2])
    minutes = (clock.now() - began) / 60
    print(f"models: model_switch_cost_s={switch_cost_s:g} (a swap takes {args.swap_seconds:g} s): "
          f"{engine.swaps} swaps in {engine.batches} batches, {4 * len(done) / minutes:.0f} images/min, "
          f"member a's share of generating time {served[1] / sum(served.values()):.3f}, "
          f"largest lead {max(highest, -lowest):.1f} s")


async def models(args: argparse.Namespace, folder: Path) -> None:
    for switch_cost_s in (0.0, args.swap_seconds):
        await run(args, folder / f"models-{switch_cost_s:g}.db", switch_cost_s)
