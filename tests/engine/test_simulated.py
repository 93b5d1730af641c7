"""The simulated engine keeps the engine contract: timing, progress, cancellation, crashes, bad requests."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from bot.scheduler.clock import VirtualClock
from engine.config import EngineSettings
from engine.pnginfo import read_parameters
from engine.simulated import SimulatedEngine
from engine.types import EngineClient, GenerationParams, JobRequest, Outcome, Progress


def job(job_id: str, seeds: tuple[int, ...] = (1,), **params: object) -> JobRequest:
    return JobRequest(job_id, "a lighthouse", seeds, GenerationParams(**params))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def engine(clock: VirtualClock) -> SimulatedEngine:
    engine = SimulatedEngine(seconds_per_step=0.5, sleep=clock.sleep)
    await engine.start()
    return engine


def test_fits_the_engine_client_protocol() -> None:
    client: EngineClient = SimulatedEngine()  # a type checker checks this line; at runtime the attributes must exist
    for name in ("start", "close", "generate", "cancel", "health", "limits"):
        assert hasattr(client, name)


async def test_time_is_steps_times_images_times_pixels(engine: SimulatedEngine, clock: VirtualClock) -> None:
    jobs = [job("a", (1, 2), steps=4), job("b", (3,), steps=4, width=512, height=1024)]
    started = clock.now()
    results = await clock.run(engine.generate(jobs))
    # a and b differ in size, so they are two UNet batches: 4 steps x 2 images, then 4 steps x 1 double-size image.
    assert clock.now() - started == pytest.approx(0.5 * 4 * 2 + 0.5 * 4 * 2)
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.DONE]
    assert [len(r.images) for r in results] == [2, 1]
    assert engine.busy_seconds == pytest.approx(8.0)
    assert engine.health().extra["batches"] == 2
    assert engine.health().images_per_second == pytest.approx(3 / 8.0)  # its measured speed, images per second


async def test_progress_every_step_for_every_job(engine: SimulatedEngine, clock: VirtualClock) -> None:
    seen: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        seen.append(progress)

    await clock.run(engine.generate([job("a", steps=3), job("b", steps=3)], on_progress))
    assert [(p.job_id, p.step, p.steps) for p in seen] == [
        ("a", 1, 3), ("b", 1, 3), ("a", 2, 3), ("b", 2, 3), ("a", 3, 3), ("b", 3, 3),
    ]


async def test_images_are_deterministic_and_carry_parameters(engine: SimulatedEngine, clock: VirtualClock) -> None:
    async def run() -> list[bytes]:
        results = await clock.run(engine.generate([job("a", (7, 8), steps=2)]))
        return [image.png for image in results[0].images]

    first, second = await run(), await run()
    assert first == second
    assert first[0] != first[1]
    assert "Seed: 7" in read_parameters(first[0])
    assert read_parameters(first[0]).startswith("a lighthouse")


async def test_cancel_running_and_waiting_jobs(engine: SimulatedEngine, clock: VirtualClock) -> None:
    running = asyncio.create_task(engine.generate([job("a", steps=10), job("b", steps=10)]))
    waiting = asyncio.create_task(engine.generate([job("c", steps=10)]))
    await clock.step()
    assert await engine.cancel("a")
    assert await engine.cancel("c")  # still waiting for the GPU
    assert not await engine.cancel("nope")
    a, b = await clock.run(running)
    assert a.outcome is Outcome.CANCELLED and b.outcome is Outcome.DONE
    assert (await clock.run(waiting))[0].outcome is Outcome.CANCELLED
    assert not await engine.cancel("b")  # finished jobs are no longer held


async def test_injected_crash_fails_the_batch_as_retryable(engine: SimulatedEngine, clock: VirtualClock) -> None:
    engine.crash_next_batch(at_step=2)
    results = await clock.run(engine.generate([job("a", steps=5), job("b", steps=5)]))
    assert all(r.outcome is Outcome.FAILED and r.retryable for r in results)
    assert engine.health().restarts == 1
    assert (await clock.run(engine.generate([job("c", steps=5)])))[0].outcome is Outcome.DONE


async def test_bad_request_fails_alone_without_retry(engine: SimulatedEngine, clock: VirtualClock) -> None:
    bad, good = await clock.run(engine.generate([job("bad", width=513), job("good")]))
    assert bad.outcome is Outcome.FAILED and not bad.retryable and "width" in bad.error
    assert good.outcome is Outcome.DONE


async def test_stopped_engine_fails_jobs_as_retryable(engine: SimulatedEngine, clock: VirtualClock) -> None:
    task = asyncio.create_task(engine.generate([job("a", steps=10)]))
    await clock.step()
    await engine.close()
    result = (await clock.run(task))[0]
    assert result.outcome is Outcome.FAILED and result.retryable and "stopped" in result.error


async def test_from_settings_draws_off_the_event_loop() -> None:
    settings = EngineSettings(simulated=True, simulated_seconds_per_step=0.001, max_batch_images=4, max_steps=60)
    engine = SimulatedEngine.from_settings(settings)
    assert (engine.seconds_per_step, engine.max_batch_images, engine.limits.max_steps) == (0.001, 4, 60)
    assert engine.draw_in_thread
    await engine.start()
    (result,) = await engine.generate([job("a", steps=2, width=512, height=384)])
    with Image.open(io.BytesIO(result.images[0].png)) as image:
        assert image.size == (64, 48)  # the aspect ratio of the request, at most 64 pixels a side


async def test_full_size_images_on_request(clock: VirtualClock) -> None:
    engine = SimulatedEngine(image_max_side=None, sleep=clock.sleep)
    await engine.start()
    (result,) = await clock.run(engine.generate([job("a", steps=1, width=320, height=200)]))
    with Image.open(io.BytesIO(result.images[0].png)) as image:
        assert image.size == (320, 200)
