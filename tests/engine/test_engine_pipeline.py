"""The diffusers pipeline in-process, on the tiny model: determinism, batching, samplers, stopping, OOM."""

from __future__ import annotations

import io
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import EngineSettings
from engine.pipeline import SCHEDULERS, ImageSpec, Pipeline
from engine.pnginfo import read_parameters
from engine.protocol import BatchDone, BatchFailed, EngineFaults, RunBatch, Step
from engine.tiny import write_tiny_model
from engine.types import SAMPLERS, GenerationParams, JobRequest
from engine.worker import Server

PARAMS = GenerationParams(width=64, height=64, steps=3, guidance=7.0, sampler="dpmpp_2m")
SPECS = [ImageSpec("a red lighthouse", "", 11), ImageSpec("a blue boat", "fog", 22), ImageSpec("a cat", "", 33)]


@pytest.fixture(scope="module")
def pipeline(tiny_model: Path) -> Pipeline:
    return Pipeline.load(EngineSettings(model=str(tiny_model), device="cpu"))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def assert_close(first: Sequence[bytes], second: Sequence[bytes]) -> None:
    """Same images up to float rounding: a pixel may be off by a level or two, the image as a whole not."""
    for a, b in zip(first, second, strict=True):
        difference = np.abs(pixels(a) - pixels(b))
        assert difference.max() <= 3, difference.max()
        assert difference.mean() < 0.5, difference.mean()


def test_tiny_model_is_written_the_same_every_time(tiny_model: Path, tmp_path: Path) -> None:
    again = write_tiny_model(tmp_path / "again")
    files = sorted(path.relative_to(tiny_model) for path in tiny_model.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(again) for path in again.rglob("*") if path.is_file())
    assert all((tiny_model / name).read_bytes() == (again / name).read_bytes() for name in files)
    names = {str(name) for name in files}
    assert {"tokenizer/vocab.json", "tokenizer/merges.txt", "unet/config.json", "vae/config.json"} <= names
    assert "tokenizer/tokenizer.json" not in names
    index = json.loads((tiny_model / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None]


def test_loads_through_the_real_loader(pipeline: Pipeline, tiny_model: Path) -> None:
    assert pipeline.device.type == "cpu"
    assert pipeline.model == tiny_model.name
    assert pipeline.pipe.safety_checker is None
    processors = {type(processor).__name__ for processor in pipeline.pipe.unet.attn_processors.values()}
    assert processors == {"AttnProcessor2_0"}  # PyTorch SDPA
    assert pipeline.pipe.tokenizer("the cat").input_ids[1] != pipeline.pipe.tokenizer("a cat").input_ids[1]


def test_same_seed_gives_identical_png_bytes(pipeline: Pipeline) -> None:
    first = pipeline.render(PARAMS, SPECS[:1])
    assert first == pipeline.render(PARAMS, SPECS[:1])
    assert first != pipeline.render(PARAMS, [ImageSpec(SPECS[0].prompt, "", 12)])


def test_pngs_carry_their_parameters(pipeline: Pipeline) -> None:
    pngs = pipeline.render(PARAMS, SPECS[:2])
    assert read_parameters(pngs[1]) == (
        "a blue boat\nNegative prompt: fog\n"
        f"Steps: 3, Sampler: DPM++ 2M, CFG scale: 7, Seed: 22, Size: 64x64, Model: {pipeline.model}"
    )
    assert Image.open(io.BytesIO(pngs[0])).size == (64, 64)


def test_every_sampler_name_has_a_scheduler() -> None:
    assert set(SCHEDULERS) == set(SAMPLERS)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_batch_equals_each_image_alone(pipeline: Pipeline, sampler: str) -> None:
    params = GenerationParams(width=64, height=64, steps=3, sampler=sampler)
    batch = pipeline.render(params, SPECS)
    alone = [pipeline.render(params, [spec])[0] for spec in SPECS]
    assert_close(batch, alone)
    assert len({png for png in batch}) == len(SPECS)  # different seeds and prompts do give different images


def test_switching_samplers_changes_the_image_and_switching_back_restores_it(pipeline: Pipeline) -> None:
    images = {}
    for sampler in ("euler", "ddim", "euler_a", "euler"):
        pipeline.set_sampler(sampler)
        assert type(pipeline.pipe.scheduler) is SCHEDULERS[sampler][0]
        params = GenerationParams(width=64, height=64, steps=3, sampler=sampler)
        images.setdefault(sampler, []).append(pipeline.render(params, SPECS[:1])[0])
    assert images["euler"][0] == images["euler"][1]
    assert len({images[name][0] for name in images}) == 3
    pipeline.set_sampler("dpmpp_2m_karras")
    karras = pipeline.pipe.scheduler
    assert karras.config.algorithm_type == "dpmsolver++" and karras.config.use_karras_sigmas
    pipeline.set_sampler("dpmpp_2m")
    assert pipeline.pipe.scheduler.config.algorithm_type == "dpmsolver++"
    assert not pipeline.pipe.scheduler.config.use_karras_sigmas
    pipeline.set_sampler("dpmpp_2m_karras")
    assert pipeline.pipe.scheduler is karras  # built once, reused: switching costs nothing


def test_step_callback_reports_every_step_and_can_stop(pipeline: Pipeline) -> None:
    seen: list[int] = []
    assert pipeline.render(
        GenerationParams(width=64, height=64, steps=4), SPECS[:1], lambda step, latents: seen.append(step) or False
    )
    assert seen == [1, 2, 3, 4]
    stopped: list[int] = []
    assert (
        pipeline.render(
            GenerationParams(width=64, height=64, steps=4), SPECS[:1], lambda step, latents: stopped.append(step) or True
        )
        is None
    )
    assert stopped == [1]


def run_in_process(pipeline: Pipeline, faults: EngineFaults, jobs: tuple[JobRequest, ...]) -> tuple[object, list[Step]]:
    """Drive the engine's batch server in this process (the documented in-process test hook)."""
    ours, theirs = multiprocessing.Pipe()
    with ThreadPoolExecutor(2) as encoder:
        server = Server(theirs, pipeline, EngineSettings(model="in-process", device="cpu"), faults, encoder)
        answer = server.run_batch(RunBatch(1, jobs))
    steps = []
    while ours.poll():
        steps.append(ours.recv())
    return answer, steps


def test_injected_out_of_memory_halves_the_batch(pipeline: Pipeline) -> None:
    jobs = (JobRequest("a", "a lighthouse", (1, 2, 3), PARAMS), JobRequest("b", "a boat", (4,), PARAMS, "fog"))
    answer, steps = run_in_process(pipeline, EngineFaults(oom_above_images=1), jobs)
    assert isinstance(answer, BatchDone)
    assert answer.oom_retries == 2  # 4 images -> 2 -> 1
    alone = [
        pipeline.render(PARAMS, [ImageSpec(job.prompt, job.negative_prompt, seed)])[0]
        for job in jobs
        for seed in job.seeds
    ]
    assert [image.png for image in (*answer.images[0], *answer.images[1])] == alone  # one image per UNet batch: exactly the lone images
    assert [step.step for step in steps][-1] == PARAMS.steps


def test_out_of_memory_for_a_single_image_fails_with_a_member_safe_reason(pipeline: Pipeline) -> None:
    answer, _ = run_in_process(pipeline, EngineFaults(oom_above_images=0), (JobRequest("a", "p", (1, 2), PARAMS),))
    assert isinstance(answer, BatchFailed)
    assert answer.reason == "Not enough GPU memory for a 64x64 image; try a smaller size."
