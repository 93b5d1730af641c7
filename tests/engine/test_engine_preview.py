"""Live previews: the fixed latent-to-RGB map, the previews' size, and which job gets which, on the tiny model."""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from engine.config import EngineSettings
from engine.pipeline import Pipeline
from engine.preview import LATENT_RGB, due, job_previews, latent_pixels, latent_previews
from engine.protocol import BatchDone, EngineFaults, RunBatch, Step
from engine.simulated import SimulatedEngine
from engine.types import GenerationParams, JobRequest, Progress
from engine.worker import Server

PARAMS = GenerationParams(width=64, height=64, steps=4, guidance=7.0, sampler="dpmpp_2m")


@pytest.fixture(scope="module")
def pipeline(tiny_model: Path) -> Pipeline:
    return Pipeline.load(EngineSettings(model=str(tiny_model), device="cpu"))


def run(pipeline: Pipeline, jobs: tuple[JobRequest, ...], every: int, batch_size: int = 8) -> list[Step]:
    """Run ``jobs`` as one batch through the engine's server in this process; the steps it reported."""
    ours, theirs = multiprocessing.Pipe()
    settings = EngineSettings(model="in-process", device="cpu", preview_every_steps=every)
    pipeline.batch_size = batch_size
    try:
        with ThreadPoolExecutor(2) as encoder:
            answer = Server(theirs, pipeline, settings, EngineFaults(), encoder).run_batch(RunBatch(1, jobs))
    finally:
        pipeline.batch_size = EngineSettings().max_batch_images
    assert isinstance(answer, BatchDone)
    steps = []
    while ours.poll():
        steps.append(ours.recv())
    return steps


def test_the_map_is_the_fixed_sd1_coefficients_and_deterministic() -> None:
    latents = torch.zeros(2, 4, 3, 5)
    latents[1, 0] = 1.0  # the first channel alone
    pixels = latent_pixels(latents)
    assert pixels.shape == (2, 3, 5, 3) and pixels.dtype == torch.uint8
    assert pixels[0].unique().tolist() == [127]  # zero latents: mid grey
    expected = [int((value + 1) * 127.5) for value in LATENT_RGB[0]]
    assert pixels[1, 0, 0].tolist() == expected
    noise = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    assert latent_previews(noise, [0]) == latent_previews(noise.clone(), [0])


def test_a_512_image_preview_is_latent_sized_and_small() -> None:
    noise = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(2)) * 2  # noise: JPEG's worst case
    [jpeg] = latent_previews(noise, [0]).values()
    assert Image.open(io.BytesIO(jpeg)).size == (64, 64)
    assert len(jpeg) <= 20_000, len(jpeg)


def test_due_every_n_steps_and_never_at_zero() -> None:
    assert [step for step in range(1, 11) if due(step, 3)] == [3, 6, 9]
    assert not any(due(step, 0) for step in range(1, 11))


def test_each_job_gets_its_first_image_and_padding_never_shows() -> None:
    latents = torch.stack([torch.full((4, 2, 2), float(i) / 10) for i in range(4)])  # 3 images and 1 of padding
    previews = job_previews(latents, [0, 2, 3], start=0, count=3)
    assert previews[0] == latent_previews(latents, [0])[0] and previews[1] == latent_previews(latents, [2])[2]
    assert previews[2] is None  # the third job's first image is index 3: the next UNet batch, not the padding
    assert job_previews(latents[:1], [0, 2, 3], start=3, count=1) == (None, None, latent_previews(latents, [0])[0])


def test_the_engine_sends_previews_every_n_steps_one_per_job(pipeline: Pipeline) -> None:
    jobs = (JobRequest("a", "a lighthouse", (1, 2), PARAMS), JobRequest("b", "a boat", (3,), PARAMS, "fog"))
    steps = run(pipeline, jobs, every=2)
    with_previews = [step for step in steps if step.previews]
    assert [step.step for step in with_previews] == [2, 4]
    for step in with_previews:
        assert len(step.previews) == 2
        for jpeg in step.previews:
            assert jpeg is not None and Image.open(io.BytesIO(jpeg)).size == (8, 8)  # the tiny model's latent
    assert with_previews[0].previews != with_previews[1].previews  # the image moves on
    assert [step.previews for step in run(pipeline, jobs, every=2) if step.previews] == [
        step.previews for step in with_previews
    ]  # same seeds, same previews
    assert not any(step.previews for step in run(pipeline, jobs, every=0))


def test_a_job_whose_first_image_runs_in_a_later_unet_batch_gets_its_preview_there(pipeline: Pipeline) -> None:
    jobs = (JobRequest("a", "a lighthouse", (1, 2), PARAMS), JobRequest("b", "a boat", (3,), PARAMS))
    steps = run(pipeline, jobs, every=4, batch_size=2)  # UNet batches: a's two images, then b's one
    first, second = [step.previews for step in steps if step.previews]
    assert first[0] is not None and first[1] is None
    assert second[0] is None and second[1] is not None


def test_preview_every_steps_is_validated() -> None:
    with pytest.raises(ValidationError, match="preview_every_steps"):
        EngineSettings(preview_every_steps=-1)
    assert EngineSettings().preview_every_steps == 0  # off unless asked for


async def test_the_simulated_engine_sends_deterministic_previews() -> None:
    async def no_wait(seconds: float) -> None:
        return None

    engine = SimulatedEngine(sleep=no_wait, preview_every_steps=2)
    await engine.start()
    reported: list[Progress] = []
    job = JobRequest("a", "a lighthouse", (5,), GenerationParams(width=512, height=256, steps=4))
    await engine.generate([job], reported.append)
    await engine.generate([JobRequest("b", job.prompt, job.seeds, job.params)], reported.append)
    previews = [progress.preview for progress in reported if progress.preview is not None]
    assert [progress.step for progress in reported if progress.preview is not None] == [2, 4, 2, 4]
    assert previews[:2] == previews[2:] and previews[0] != previews[1]
    assert Image.open(io.BytesIO(previews[0])).size == (64, 32)
