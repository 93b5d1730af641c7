"""The scheduler driving a pool of simulated engines in-process, on a virtual clock: work spreads over the
engines, the fair order is the one engine's, shapes stay on warm engines, and a crash, a cancel, an engine
joining or leaving touch only what they should."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.scheduler.clock import VirtualClock
from bot.scheduler.core import Lane
from bot.scheduler.dispatch import suits
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState
from engine.simulated import SimulatedEngine
from engine.types import GenerationParams
from tests.scheduler.harness import GUILD, Harness, settings

SECONDS = 1.0
"""One 512x512 image of 10 steps at 0.1 s a step."""


async def open_harness(path: Path, clock: VirtualClock, engines: int, max_batch_images: int = 1) -> Harness:
    scheduler, quotas = settings()
    harness = Harness(path, clock, scheduler, quotas, max_batch_images=max_batch_images, engines=engines)
    await harness.start()
    return harness


@pytest.fixture
async def pool(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Harness]:
    harness = await open_harness(tmp_path / "dq.db", clock, engines=2)
    yield harness
    await harness.stop()


def started(harness: Harness) -> list[int]:
    harness.collect()
    return [event.job_id for event in harness.events if event.kind is EventKind.STARTED]


async def test_jobs_spread_over_every_engine_and_run_side_by_side(tmp_path: Path, clock: VirtualClock) -> None:
    harness = await open_harness(tmp_path / "dq.db", clock, engines=3)
    await harness.service.pause(9)
    jobs = [await harness.submit(member) for member in (1, 2, 3)]
    await harness.service.resume(9)
    began = clock.now()
    await harness.drain()
    for job in jobs:
        view = await harness.service.job(GUILD, job.job.job_id)
        assert (view.state, view.started_at) == (JobState.DONE, began)
        assert view.finished_at == pytest.approx(began + SECONDS)
    assert [engine.batches for engine in harness.engines] == [1, 1, 1]
    engine = harness.service.stats(GUILD).engine
    assert engine["extra"]["engines"] == 3
    assert [each["images_per_second"] for each in engine["engines"]] == [pytest.approx(1 / SECONDS)] * 3
    assert engine["images_per_second"] == pytest.approx(3 / SECONDS)
    await harness.stop()


async def flood_two_servers(harness: Harness) -> None:
    """Server 1 (weight 2) and server 2 (weight 1), two members each, twelve one-image jobs a member."""
    await harness.service.pause(9)
    await harness.service.set_server_weight(9, 1, 2.0)
    for _ in range(12):
        for guild, member in ((1, 11), (1, 12), (2, 21), (2, 22)):
            await harness.submit(member, guild=guild)
    await harness.service.resume(9)
    await harness.drain()


@pytest.mark.parametrize("engines", [2, 4])
async def test_the_pool_keeps_one_engines_fair_order(tmp_path: Path, clock: VirtualClock, engines: int) -> None:
    one = await open_harness(tmp_path / "one.db", clock, engines=1)
    await flood_two_servers(one)
    await one.stop()
    many = await open_harness(tmp_path / "many.db", clock, engines=engines)
    began = clock.now()
    await flood_two_servers(many)
    assert started(many) == started(one)
    assert clock.now() - began == pytest.approx(48 / engines * SECONDS)  # every engine busy throughout
    await many.stop()


async def test_a_batch_goes_to_the_idle_engine_that_last_ran_its_shape(tmp_path: Path, clock: VirtualClock) -> None:
    harness = await open_harness(tmp_path / "dq.db", clock, engines=2, max_batch_images=8)
    await harness.service.pause(9)
    await harness.submit(1)
    await harness.submit(2, width=768, height=768)
    await harness.service.resume(9)
    await harness.drain()
    small, large = harness.engines
    assert (small.images_made, large.images_made) == (1, 1)
    for member in (3, 4):  # whichever engine wakes first, the shape lands on the engine that ran it
        await harness.submit(member, width=768, height=768)
        await harness.drain()
    await harness.submit(5)
    await harness.drain()
    assert (small.images_made, large.images_made) == (2, 3)
    await harness.stop()


async def test_a_batch_goes_to_the_idle_engine_that_has_its_size_warm(tmp_path: Path, clock: VirtualClock) -> None:
    harness = await open_harness(tmp_path / "dq.db", clock, engines=2)
    cold, warm = harness.engines
    warm.health = lambda: replace(SimulatedEngine.health(warm), sizes=((768, 768),))  # compiled for 768x768
    await harness.submit(1, width=768, height=768)  # whichever engine wakes first, the warm one runs it
    await harness.drain()
    assert (cold.images_made, warm.images_made) == (0, 1)
    await harness.stop()


def test_an_engine_with_the_batchs_model_loaded_suits_it_better_than_one_with_its_size_warm() -> None:
    engine = SimulatedEngine()
    engine.health = lambda: replace(SimulatedEngine.health(engine), sizes=((768, 768),))  # type: ignore[method-assign]
    xl = GenerationParams(width=768, height=768, model="xl")
    fresh, xl_loaded, ran_it = Lane(1, engine), Lane(2, engine, params=replace(xl, width=512)), Lane(3, engine, params=xl)
    assert suits(ran_it, xl) > suits(xl_loaded, xl) > suits(fresh, xl) > 0  # fresh: the default model, size warm
    assert suits(fresh, replace(xl, model="")) > suits(xl_loaded, replace(xl, model=""))


async def test_a_crashed_engines_job_is_requeued_once_while_the_other_keeps_serving(pool: Harness) -> None:
    await pool.service.pause(9)
    crashed = await pool.submit(1)
    other = await pool.submit(2)
    pool.engines[0].crash_next_batch(at_step=3)  # the first engine takes the first job
    await pool.service.resume(9)
    began = pool.clock.now()
    await pool.drain()
    kinds = pool.kinds(crashed.job.job_id)
    assert (kinds.count(EventKind.STARTED), kinds.count(EventKind.REQUEUED), kinds[-1]) == (2, 1, EventKind.DONE)
    assert (await pool.service.job(GUILD, crashed.job.job_id)).attempts == 2
    view = await pool.service.job(GUILD, other.job.job_id)
    assert (view.state, view.attempts, view.finished_at) == (JobState.DONE, 1, pytest.approx(began + SECONDS))


async def test_cancel_reaches_a_job_running_on_the_second_engine(pool: Harness) -> None:
    await pool.service.pause(9)
    first = await pool.submit(1, steps=50)
    second = await pool.submit(2, steps=50)
    await pool.service.resume(9)
    began = pool.clock.now()
    await pool.clock.advance(1.0)
    assert pool.engines[1].health().busy
    view = await pool.clock.run(pool.service.cancel(GUILD, second.job.job_id, actor_id=2))
    assert view.state is JobState.CANCELLED
    await pool.drain()
    view = await pool.service.job(GUILD, first.job.job_id)
    assert (view.state, view.finished_at) == (JobState.DONE, pytest.approx(began + 5 * SECONDS))


async def test_an_engine_that_leaves_finishes_its_batch_and_one_that_joins_takes_work(pool: Harness) -> None:
    await pool.service.pause(9)
    jobs = [await pool.submit(member) for member in (1, 2, 3, 4)]
    await pool.service.resume(9)
    await pool.clock.advance(SECONDS / 2)
    leaving = pool.engines[1]
    assert pool.pool is not None and leaving.health().busy
    pool.pool.remove(leaving)
    joining = pool.simulated_engine()
    await joining.start()
    pool.pool.add(joining)
    await pool.drain()
    for job in jobs:
        assert (await pool.service.job(GUILD, job.job.job_id)).state is JobState.DONE
    assert (pool.engines[0].batches, leaving.batches, joining.batches) == (2, 1, 1)
