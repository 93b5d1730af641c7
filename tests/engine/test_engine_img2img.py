"""img2img on the tiny model: determinism, batching, strength, upscale sizes with VAE tiling, start-image safety."""

from __future__ import annotations

import io
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.config import EngineSettings
from engine.img2img import effective_strength
from engine.pipeline import ImageSpec, Pipeline
from engine.pnginfo import encode_png, read_parameters
from engine.protocol import BatchDone, EngineFaults, RunBatch, Step
from engine.start_images import REFUSED, UNREADABLE
from engine.types import GenerationParams, JobRequest, SafetyVerdict
from engine.worker import Server
from tests.engine.test_engine_pipeline import assert_close

PARAMS = GenerationParams(width=64, height=64, steps=4, sampler="euler", strength=0.5)
RED = (255, 0, 0)


def start_image(size: tuple[int, int] = (64, 64), colour: tuple[int, int, int] | None = None) -> Image.Image:
    if colour is not None:
        return Image.new("RGB", size, colour)
    return Image.linear_gradient("L").resize(size).convert("RGB")


def png(picture: Image.Image) -> bytes:
    return encode_png(picture, "")


@pytest.fixture(scope="module")
def pipeline(tiny_model: Path) -> Pipeline:
    return Pipeline.load(EngineSettings(model=str(tiny_model), device="cpu"))


def specs(start: Image.Image) -> list[ImageSpec]:
    return [ImageSpec("a red lighthouse", "", 11, start), ImageSpec("a boat", "fog", 22, start)]


def test_same_seed_gives_the_same_image_and_another_seed_another(pipeline: Pipeline) -> None:
    first = pipeline.render(PARAMS, specs(start_image())[:1])
    assert first == pipeline.render(PARAMS, specs(start_image())[:1])
    assert first != pipeline.render(PARAMS, [ImageSpec("a red lighthouse", "", 12, start_image())])
    assert type(pipeline.start_images._pipe).__name__ == "StableDiffusionImg2ImgPipeline"
    assert pipeline.start_images._pipe.unet is pipeline.pipe.unet  # from_pipe: the weights are shared


def test_batch_equals_each_image_alone(pipeline: Pipeline) -> None:
    batch = pipeline.render(PARAMS, specs(start_image()))
    alone = [pipeline.render(PARAMS, [spec])[0] for spec in specs(start_image())]
    assert_close(batch, alone)
    assert batch[0] != batch[1]


def final_latents(pipeline: Pipeline, params: GenerationParams, spec: ImageSpec) -> torch.Tensor:
    """The latents the denoising ends with (before the VAE decodes them)."""
    seen: list[torch.Tensor] = []
    decode = pipeline.decode
    pipeline.decode = lambda latents, count=None: seen.append(latents) or decode(latents, count)  # type: ignore[method-assign]
    try:
        pipeline.generate(params, [spec])
    finally:
        del pipeline.decode
    return seen[0]


def test_lower_strength_stays_closer_to_the_start_image(pipeline: Pipeline) -> None:
    start = start_image()
    vae = pipeline.pipe.vae
    with torch.inference_mode():
        pixels = pipeline.pipe.image_processor.preprocess(start)
        start_latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    spec = ImageSpec("a red lighthouse", "", 11, start)
    distance = {
        strength: float((final_latents(pipeline, GenerationParams(64, 64, 4, 7.0, "euler", strength), spec)
                         - start_latents).abs().mean())
        for strength in (1.0, 0.3)
    }  # fmt: skip
    assert distance[0.3] < distance[1.0] / 4
    full, low = (pipeline.render(GenerationParams(64, 64, 4, 7.0, "euler", s), [spec])[0] for s in (1.0, 0.3))
    assert full != low


def test_strength_runs_its_share_of_the_steps_and_is_written_into_the_png(pipeline: Pipeline) -> None:
    seen: list[int] = []
    params = GenerationParams(width=64, height=64, steps=10, sampler="euler", strength=0.3)
    [image] = pipeline.render(params, specs(start_image())[:1], lambda step, latents: seen.append(step) or False)
    assert seen == [1, 2, 3] and params.denoise_steps == 3
    assert read_parameters(image).endswith(f"Model: {pipeline.model}, Denoising strength: 0.3")
    for steps, strength in ((49, 1 / 49), (7, 0.01), (25, 0.6), (3, 1.0)):
        params = GenerationParams(steps=steps, strength=strength)
        assert int(steps * effective_strength(params)) == params.denoise_steps  # what diffusers will run


def test_an_upscale_gives_twice_the_size_through_the_tiled_vae(tiny_model: Path) -> None:
    pipeline = Pipeline.load(EngineSettings(model=str(tiny_model), device="cpu", vae_tiling_above=96 * 96))
    small = pipeline.render(GenerationParams(64, 64, 2, 7.0, "euler"), [ImageSpec("a cat", "", 5)])[0]
    assert not pipeline.pipe.vae.use_tiling
    enlarged = Image.open(io.BytesIO(small)).convert("RGB").resize((128, 128), Image.Resampling.LANCZOS)
    params = GenerationParams(128, 128, 2, 7.0, "euler", strength=0.3)
    [upscaled] = pipeline.render(params, [ImageSpec("a cat", "", 5, enlarged)])
    assert Image.open(io.BytesIO(upscaled)).size == (128, 128)
    assert pipeline.pipe.vae.use_tiling  # 128x128 is over 96x96 pixels
    pipeline.render(GenerationParams(64, 64, 2, 7.0, "euler"), [ImageSpec("a cat", "", 5)])
    assert not pipeline.pipe.vae.use_tiling  # and back off for small images


class RedIsFlagged:
    """A stand-in image safety check: a wholly red picture is flagged, any other passes."""

    name = "red-check"
    busy_seconds = 0.0

    def __init__(self) -> None:
        self.checked: list[int] = []

    def check(self, pictures: Sequence[Image.Image]) -> list[SafetyVerdict]:
        self.checked.append(len(pictures))
        return [SafetyVerdict.from_score(1.0 if picture.getcolors(1) == [(picture.width * picture.height, RED)]
                                         else 0.0, self.name) for picture in pictures]  # fmt: skip


def run(pipeline: Pipeline, jobs: tuple[JobRequest, ...], check: RedIsFlagged | None) -> tuple[object, list[Step]]:
    ours, theirs = multiprocessing.Pipe()
    with ThreadPoolExecutor(2) as encoder:
        server = Server(theirs, pipeline, EngineSettings(model="in-process", device="cpu"), EngineFaults(), encoder,
                        check)  # type: ignore[arg-type]  # fmt: skip
        answer = server.run_batch(RunBatch(1, jobs))
    steps = []
    while ours.poll():
        steps.append(ours.recv())
    return answer, steps


def test_a_flagged_start_image_fails_its_job_alone(pipeline: Pipeline) -> None:
    check = RedIsFlagged()
    jobs = (
        JobRequest("ok", "a lighthouse", (1, 2), PARAMS, init_image=png(start_image())),
        JobRequest("red", "a boat", (3,), PARAMS, init_image=png(start_image(colour=RED))),
        JobRequest("broken", "a boat", (4,), PARAMS, init_image=png(start_image())[:60]),
    )
    answer, steps = run(pipeline, jobs, check)
    assert isinstance(answer, BatchDone)
    assert answer.refused == (None, REFUSED, UNREADABLE)
    assert [len(images) for images in answer.images] == [2, 0, 0]
    assert check.checked[0] == 2  # both readable start images in one pass, before any step
    alone = pipeline.render(PARAMS, [ImageSpec("a lighthouse", "", 1, start_image())])
    assert_close([answer.images[0][0].png], alone)
    assert {(step.step, step.steps) for step in steps} >= {(PARAMS.denoise_steps, PARAMS.denoise_steps)}


def test_every_start_image_refused_runs_nothing(pipeline: Pipeline) -> None:
    job = JobRequest("red", "a boat", (3,), PARAMS, init_image=png(start_image(colour=RED)))
    answer, steps = run(pipeline, (job,), RedIsFlagged())
    assert isinstance(answer, BatchDone) and answer.refused == (REFUSED,) and answer.images == ((),)
    assert steps == []
