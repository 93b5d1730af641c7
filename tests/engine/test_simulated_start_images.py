"""The simulated engine honours start images, strength, model choice and start-image safety, as the engine does."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.scheduler.clock import VirtualClock
from engine.pnginfo import encode_png, read_parameters
from engine.simulated import START_IMAGE, SimulatedEngine
from engine.start_images import REFUSED, UNREADABLE
from engine.types import GenerationParams, JobRequest, Limits, Outcome, Progress

RED = encode_png(Image.new("RGB", (64, 64), (255, 0, 0)), "")
BLUE = encode_png(Image.new("RGB", (64, 64), (0, 0, 255)), "")


def job(job_id: str, start: bytes | None = None, seeds: tuple[int, ...] = (1,), **params: object) -> JobRequest:
    return JobRequest(job_id, "a lighthouse", seeds, GenerationParams(width=64, height=64, **params), init_image=start)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


async def test_the_picture_derives_from_the_start_image_the_more_the_lower_the_strength(clock: VirtualClock) -> None:
    engine = SimulatedEngine(image_max_side=None, sleep=clock.sleep)
    await engine.start()
    jobs = [job("red", RED, strength=0.3), job("red-full", RED), job("blue", BLUE, strength=0.3),
            job("again", RED, strength=0.3), job("seed", RED, (2,), strength=0.3)]  # fmt: skip
    red, red_full, blue, again, seed = [result.images[0].png for result in await clock.run(engine.generate(jobs))]
    assert red == again and red != seed  # deterministic per seed
    assert pixels(red)[..., 0].mean() > pixels(blue)[..., 0].mean() + 100  # the start image shows through
    assert pixels(red)[..., 0].mean() > pixels(red_full)[..., 0].mean()  # less of it at strength 1
    assert Image.open(io.BytesIO(red)).size == (64, 64)
    assert (read_parameters(red) or "").endswith("Model: simulated, Denoising strength: 0.3")


async def test_strength_runs_its_share_of_the_steps(clock: VirtualClock) -> None:
    engine = SimulatedEngine(seconds_per_step=0.5, sleep=clock.sleep, limits=Limits())
    await engine.start()
    seen: list[Progress] = []
    started = clock.now()
    await clock.run(engine.generate([job("a", RED, steps=10, strength=0.3)], seen.append))
    assert [(progress.step, progress.steps) for progress in seen] == [(1, 3), (2, 3), (3, 3)]
    assert clock.now() - started == pytest.approx(3 * 0.5 * 64 * 64 / (512 * 512))


async def test_a_model_must_be_configured_and_is_written_into_the_png(clock: VirtualClock) -> None:
    engine = SimulatedEngine(sleep=clock.sleep, limits=Limits(models=("anime",)))
    await engine.start()
    chosen, unknown = await clock.run(engine.generate([job("a", model="anime"), job("b", model="other")]))
    assert chosen.outcome == Outcome.DONE
    assert (read_parameters(chosen.images[0].png) or "").endswith("Model: anime")
    assert unknown.outcome == Outcome.FAILED and (unknown.error or "").startswith("model: must be one of")


async def test_a_flagged_or_unreadable_start_image_fails_only_its_job(clock: VirtualClock) -> None:
    def scores(request: JobRequest, seed: int) -> float:
        return 0.9 if seed == START_IMAGE and request.init_image == RED else 0.1

    engine = SimulatedEngine(sleep=clock.sleep, safety_scores=scores)
    await engine.start()
    jobs = [job("r", RED, strength=0.5), job("b", BLUE, strength=0.5), job("p"), job("x", RED[:40], strength=0.5)]
    red, blue, plain, broken = await clock.run(engine.generate(jobs))
    assert (red.outcome, red.error, red.retryable, red.images) == (Outcome.FAILED, REFUSED, False, ())
    assert (broken.outcome, broken.error) == (Outcome.FAILED, UNREADABLE)  # a PNG header without its pixels
    assert blue.outcome == plain.outcome == Outcome.DONE
    assert blue.images[0].safety is not None and blue.images[0].safety.label == "ok"
