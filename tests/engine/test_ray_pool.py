"""The scheduler driving simulated engines as actors on a real local Ray cluster (2 CPUs, started here).

Jobs flow through 1, 2 and 3 engines; an engine killed mid-batch has its job
re-queued once while the others finish; a dead engine is replaced; an engine
that joins takes work; cancel reaches a job on a remote engine; an actor runs
the real engine process and pipeline (the tiny model). Every wait is for an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]'): no Ray engine pool tests")

from bot.db import Database  # noqa: E402
from bot.scheduler.clock import SystemClock  # noqa: E402
from bot.scheduler.config import QuotaSettings, TierSettings  # noqa: E402
from bot.scheduler.events import EventKind, JobEvent, Subscription  # noqa: E402
from bot.scheduler.models import DreamRequest, JobState, Member  # noqa: E402
from bot.scheduler.service import DreamService  # noqa: E402
from engine.client import CRASHED, EngineStartError  # noqa: E402
from engine.config import EngineSettings, PoolSettings, RaySettings  # noqa: E402
from engine.protocol import EngineFaults  # noqa: E402
from engine.ray_pool import RayEngine, RayPool  # noqa: E402
from engine.types import GenerationParams, JobRequest, Outcome, Progress  # noqa: E402

GUILD = 1
QUOTAS = QuotaSettings(tiers={"default": TierSettings(burst=100, rate_per_hour=10_000, daily_images=10_000,
                                                      max_queued=50)})
HOLD_ALL = EngineFaults(hold_jobs=frozenset(str(job_id) for job_id in range(1, 10)))
"""Holds whichever job the engine takes after its first step (job ids count from 1 in a fresh journal)."""


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One local cluster for the module (starting one is slow), stopped at its end."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def engine_settings(engines: int, max_engines: int | None = None, scan_interval_s: float = 30.0) -> EngineSettings:
    return EngineSettings(
        simulated=True, simulated_seconds_per_step=0.01, max_batch_images=1, backend="ray",
        pool=PoolSettings(min_engines=engines, max_engines=max_engines or engines),
        ray=RaySettings(num_gpus=0, num_cpus=0.25, scan_interval_s=scan_interval_s),
    )


@dataclass
class Bot:
    service: DreamService
    pool: RayPool
    events: Subscription
    seen: list[JobEvent]

    async def submit(self, member: int, steps: int = 20) -> int:
        admission = await self.service.submit(DreamRequest(
            member=Member(member), guild_id=GUILD, prompt="a lighthouse", seeds=(member,),
            idempotency_key=f"key-{member}", params=GenerationParams(steps=steps), channel_id=2,
        ))
        return admission.job.job_id

    async def submit_together(self, members: range) -> list[int]:
        """Submit while paused, then resume: every idle engine takes one at once."""
        await self.service.pause(9)
        job_ids = [await self.submit(member) for member in members]
        await self.service.resume(9)
        return job_ids

    async def until(self, kind: EventKind, job_ids: list[int], count: int | None = None) -> list[int]:
        """Wait until ``count`` of ``job_ids`` (default: all) have had an event of ``kind``; the others."""
        count = len(job_ids) if count is None else count
        while sum(self.had(kind, job_id) for job_id in job_ids) < count:
            self.seen.append(await self.events.get())
        return [job_id for job_id in job_ids if not self.had(kind, job_id)]

    def had(self, kind: EventKind, job_id: int) -> bool:
        return any(event.kind is kind and event.job_id == job_id for event in self.seen)

    def kinds(self, job_id: int) -> list[EventKind]:
        return [event.kind for event in self.seen if event.job_id == job_id]


@asynccontextmanager
async def serving(tmp_path: Path, settings: EngineSettings) -> AsyncIterator[Bot]:
    pool = RayPool(settings)
    await pool.start()
    db = await Database.open(tmp_path / "dq.db")
    service = DreamService(db, pool, quotas=QUOTAS, max_batch_images=1, clock=SystemClock())
    bot = Bot(service, pool, service.subscribe(), [])
    await service.start()
    try:
        yield bot
    finally:
        await service.close(grace_s=0)
        await pool.close()
        await db.close()


def batches(engine: RayEngine) -> int:
    return int(engine.health().extra["batches"])


@pytest.mark.parametrize("engines", [1, 2, 3])
async def test_jobs_flow_through_every_engine(tmp_path: Path, engines: int) -> None:
    async with serving(tmp_path, engine_settings(engines)) as bot:
        assert len(bot.pool.engines) == engines
        job_ids = await bot.submit_together(range(1, 2 * engines + 1))
        await bot.until(EventKind.DONE, job_ids)
        for job_id in job_ids:
            [image] = await bot.service.images(GUILD, job_id)
            assert image.png.startswith(b"\x89PNG")
        assert all(batches(engine) >= 1 for engine in bot.pool.engines)
        assert sum(batches(engine) for engine in bot.pool.engines) == 2 * engines
        assert bot.service.stats(GUILD).engine["extra"]["engines"] == engines


async def test_an_engine_killed_mid_batch_has_its_job_requeued_once_and_the_rest_finish(tmp_path: Path) -> None:
    async with serving(tmp_path, engine_settings(1)) as bot:
        steady = bot.pool.engines[0]
        held = await bot.pool.add_engine(HOLD_ALL)
        job_ids = await bot.submit_together(range(1, 4))
        # The held engine keeps one job after its first step; the steady engine runs the other two.
        [stuck] = await bot.until(EventKind.DONE, job_ids, count=2)
        await bot.until(EventKind.PROGRESS, [stuck])
        ray.kill(held.actor)
        await bot.until(EventKind.DONE, [stuck])
        kinds = bot.kinds(stuck)
        assert (kinds.count(EventKind.STARTED), kinds.count(EventKind.REQUEUED)) == (2, 1)
        [requeued] = [event for event in bot.seen if event.kind is EventKind.REQUEUED]
        assert requeued.job_id == stuck and requeued.error == CRASHED  # what the member is told
        view = await bot.service.job(GUILD, stuck)
        assert (view.state, view.attempts) == (JobState.DONE, 2)
        assert bot.pool.engines == [steady] and held.lost
        assert batches(steady) == 3


async def test_a_dead_idle_engine_is_replaced_and_the_new_one_serves(tmp_path: Path) -> None:
    async with serving(tmp_path, engine_settings(2, scan_interval_s=0.2)) as bot:
        dead = bot.pool.engines[0]
        replaced = asyncio.Event()
        bot.pool.listen(lambda: replaced.set() if dead not in bot.pool.engines and len(bot.pool.engines) == 2
                        else None)
        ray.kill(dead.actor)
        await replaced.wait()
        job_ids = await bot.submit_together(range(1, 3))
        await bot.until(EventKind.DONE, job_ids)
        assert dead.lost and [batches(engine) for engine in bot.pool.engines] == [1, 1]


async def test_the_pool_fills_to_max_engines_and_an_engine_added_live_takes_work(tmp_path: Path) -> None:
    async with serving(tmp_path, engine_settings(1, max_engines=2)) as bot:
        assert len(bot.pool.engines) == 2  # min_engines, then as many more as the cluster has room for
        assert await bot.pool.grow() == 0
        joined = await bot.pool.add_engine()
        job_ids = await bot.submit_together(range(1, 4))
        await bot.until(EventKind.DONE, job_ids)
        assert batches(joined) == 1 and [batches(engine) for engine in bot.pool.engines] == [1, 1, 1]


async def test_cancel_reaches_a_job_running_on_a_remote_engine(tmp_path: Path) -> None:
    async with serving(tmp_path, engine_settings(1)) as bot:
        await bot.pool.add_engine(HOLD_ALL)
        job_ids = await bot.submit_together(range(1, 3))
        [stuck] = await bot.until(EventKind.DONE, job_ids, count=1)  # the held engine's job runs on
        await bot.until(EventKind.PROGRESS, [stuck])
        member = (await bot.service.job(GUILD, stuck)).member_id
        view = await bot.service.cancel(GUILD, stuck, actor_id=member)
        assert view.state is JobState.CANCELLED
        assert bot.kinds(stuck).count(EventKind.STARTED) == 1


async def test_a_cluster_without_room_for_min_engines_fails_the_start_naming_the_key() -> None:
    settings = engine_settings(1).model_copy(update={"ray": RaySettings(num_gpus=0, num_cpus=64, start_timeout_s=1)})
    pool = RayPool(settings)
    with pytest.raises(EngineStartError, match=r"engine\.pool: no room on the cluster for engine-1 .*"
                                               r"engine\.ray\.num_cpus \(64\)"):
        await pool.start()
    assert pool.engines == []


async def test_an_actor_runs_the_engine_process_and_its_pipeline(tiny_model: Path) -> None:
    settings = EngineSettings(
        model=str(tiny_model), local_files_only=True, device="cpu", min_size=64, warm_up_sizes=((64, 64),),
        backend="ray", ray=RaySettings(num_gpus=0, num_cpus=0.25),
    )
    pool = RayPool(settings)
    await pool.start()
    try:
        [engine] = pool.engines
        assert engine.health().device == "cpu"
        steps: list[Progress] = []
        [result] = await pool.generate([JobRequest("1", "a lighthouse", (7, 8), GenerationParams(64, 64, 3))],
                                       steps.append)
        assert result.outcome is Outcome.DONE and [image.seed for image in result.images] == [7, 8]
        assert all(image.png.startswith(b"\x89PNG") for image in result.images)
        assert [step.step for step in steps] == [1, 2, 3]
    finally:
        await pool.close()
