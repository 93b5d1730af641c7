"""The engine process through its async client: batching, determinism, progress, validation, cancelling waiting jobs.

One engine process serves the whole module.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from engine.client import EngineProcess, EngineStartError
from engine.config import EngineSettings
from engine.pnginfo import encode_png, read_parameters
from engine.start_images import UNREADABLE
from engine.types import GenerationParams, JobRequest, Outcome, Progress

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARAMS = GenerationParams(width=64, height=64, steps=3, sampler="euler_a")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(tiny_model: Path) -> AsyncIterator[EngineProcess]:
    settings = EngineSettings(model=str(tiny_model), device="cpu", max_batch_images=4, preview_every_steps=2)
    async with EngineProcess(settings) as engine:
        yield engine


def job(
    job_id: str, *seeds: int, prompt: str = "a lighthouse", params: GenerationParams = PARAMS, negative: str = ""
) -> JobRequest:
    return JobRequest(job_id, prompt, seeds, params, negative)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


async def test_ready_and_healthy(engine: EngineProcess, tiny_model: Path) -> None:
    health = engine.health()
    assert health.ready and not health.busy
    assert (health.device, health.model, health.restarts) == ("cpu", tiny_model.name, 0)
    assert engine.pid is not None


async def test_same_seed_gives_identical_png_bytes(engine: EngineProcess) -> None:
    [first] = await engine.generate([job("a", 7)])
    [second] = await engine.generate([job("b", 7)])
    assert first.outcome == second.outcome == Outcome.DONE
    assert first.images[0].png == second.images[0].png
    assert first.images[0].seed == 7


async def test_compatible_jobs_share_one_batch_and_equal_their_images_alone(engine: EngineProcess) -> None:
    together = [job("a", 1, 2), job("b", 3, prompt="a boat", negative="fog")]
    batches_before = engine.health().extra["batches"]
    results = await engine.generate(together)
    assert engine.health().extra["batches"] == batches_before + 1
    assert [result.job_id for result in results] == ["a", "b"]
    assert [image.seed for result in results for image in result.images] == [1, 2, 3]
    for result, request in zip(results, together, strict=True):
        for image in result.images:
            [alone] = await engine.generate(
                [job("alone", image.seed, prompt=request.prompt, negative=request.negative_prompt)]
            )
            difference = np.abs(pixels(image.png) - pixels(alone.images[0].png))
            assert difference.max() <= 3 and difference.mean() < 0.5
    assert read_parameters(results[1].images[0].png).startswith(
        "a boat\nNegative prompt: fog\nSteps: 3, Sampler: Euler a,"
    )


async def test_incompatible_jobs_run_in_separate_batches_and_come_back_in_order(engine: EngineProcess) -> None:
    ddim = GenerationParams(width=64, height=64, steps=2, sampler="ddim")
    wide = GenerationParams(width=96, height=64, steps=2, sampler="ddim")
    batches_before = engine.health().extra["batches"]
    results = await engine.generate([job("a", 1, params=ddim), job("b", 2, params=wide), job("c", 3, params=ddim)])
    assert engine.health().extra["batches"] == batches_before + 2
    assert [result.job_id for result in results] == ["a", "b", "c"]
    assert all(result.outcome == Outcome.DONE for result in results)
    assert Image.open(io.BytesIO(results[1].images[0].png)).size == (96, 64)


async def test_a_job_larger_than_the_batch_limit_is_split_inside_the_engine(engine: EngineProcess) -> None:
    [result] = await engine.generate([job("nine", *range(100, 109))])
    assert result.outcome == Outcome.DONE
    assert [image.seed for image in result.images] == list(range(100, 109))
    [alone] = await engine.generate([job("alone", 108)])
    assert np.abs(pixels(result.images[-1].png) - pixels(alone.images[0].png)).max() <= 3


async def test_progress_is_reported_for_every_step_of_every_job(engine: EngineProcess) -> None:
    seen: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        seen.append(progress)

    await engine.generate([job("a", 1), job("b", 2)], on_progress)
    for job_id in ("a", "b"):
        assert [p.step for p in seen if p.job_id == job_id] == [1, 2, 3]
        assert {p.steps for p in seen if p.job_id == job_id} == {3}
    previews = {p.job_id: p.preview for p in seen if p.preview is not None}
    assert [p.step for p in seen if p.preview is not None] == [2, 2]  # every 2 steps, each job its own
    assert previews["a"] != previews["b"]
    assert Image.open(io.BytesIO(previews["a"])).size == (8, 8)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (job("x", 1, prompt="   "), "prompt"),
        (job("x", 1, params=GenerationParams(width=513, height=64, steps=3)), "width"),
        (job("x", 1, params=GenerationParams(width=64, height=64, steps=0)), "steps"),
        (job("x", 1, params=GenerationParams(width=64, height=64, steps=500)), "steps"),
        (job("x", *range(40)), "count"),
        (job("x", 1, params=GenerationParams(width=64, height=64, steps=3, sampler="lms")), "sampler"),
        (job("x", -1), "seed"),
    ],
    ids=["empty prompt", "width 513", "0 steps", "500 steps", "40 images", "unknown sampler", "negative seed"],
)
async def test_bad_requests_are_refused_naming_the_field(
    engine: EngineProcess, request_: JobRequest, field: str
) -> None:
    images_before = engine.health().extra["images"]
    bad, good = await engine.generate([request_, job("ok", 5)])
    assert bad.outcome == Outcome.FAILED and not bad.retryable
    assert bad.error.startswith(f"{field}: ")
    assert good.outcome == Outcome.DONE
    assert engine.health().extra["images"] == images_before + 1  # nothing of the bad job was generated


async def test_start_image_jobs_run_apart_and_an_unreadable_one_fails_alone(engine: EngineProcess) -> None:
    start = encode_png(Image.linear_gradient("L").resize((64, 64)).convert("RGB"), "")
    img2img = GenerationParams(width=64, height=64, steps=4, sampler="euler_a", strength=0.5)
    from_start = JobRequest("start", "a lighthouse", (1,), img2img, init_image=start)
    same_params = JobRequest("noise", "a lighthouse", (1,), replace(img2img, strength=1.0))
    unreadable = JobRequest("broken", "a lighthouse", (2,), img2img, init_image=start[:40])  # a header, no pixels
    batches_before = engine.health().extra["batches"]
    seen: list[Progress] = []
    ran, noise, broken = await engine.generate([from_start, same_params, unreadable], seen.append)
    assert engine.health().extra["batches"] == batches_before + 2  # from a start image and from noise: apart
    assert ran.outcome == noise.outcome == Outcome.DONE and ran.images[0].png != noise.images[0].png
    assert (broken.outcome, broken.error, broken.retryable) == (Outcome.FAILED, UNREADABLE, False)
    assert {p.steps for p in seen if p.job_id == "start"} == {img2img.denoise_steps}
    assert read_parameters(ran.images[0].png).endswith("Denoising strength: 0.5")


async def test_cancelling_a_waiting_job(engine: EngineProcess) -> None:
    other = GenerationParams(width=64, height=64, steps=3, sampler="pndm")
    cancelled: list[bool] = []

    async def cancel_second(progress: Progress) -> None:
        if progress.job_id == "first" and progress.step == 1:
            cancelled.append(await engine.cancel("second"))

    first, second = await engine.generate([job("first", 1), job("second", 2, params=other)], cancel_second)
    assert cancelled == [True]
    assert first.outcome == Outcome.DONE
    assert second.outcome == Outcome.CANCELLED and not second.images
    assert await engine.cancel("second") is False  # no longer held


async def test_cancelling_an_unknown_job(engine: EngineProcess) -> None:
    assert await engine.cancel("nobody") is False


async def test_no_model_configured_explains_how_to_set_one() -> None:
    with pytest.raises(EngineStartError, match=r"engine\.model.*make-tiny-model DIR"):
        await EngineProcess(EngineSettings(model=None)).start()
