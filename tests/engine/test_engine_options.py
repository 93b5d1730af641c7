"""The engine's speed and memory options: validated by key, wired as asked, and images equivalent to the plain ones.

Everything runs on the tiny model on the CPU. ``torch.compile`` is exercised
with the ``eager`` backend: Dynamo captures and guards the same graphs as for
inductor (so recompiles show), but runs them without generating kernels (an
inductor compile of the tiny model takes about 40 s on a small CPU).
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from engine.client import EngineProcess, EngineStartError
from engine.config import EngineSettings
from engine.optimize import OptionError
from engine.pipeline import ImageSpec, Pipeline
from engine.protocol import BatchDone, EngineFaults, RunBatch
from engine.types import GenerationParams, JobRequest
from engine.warmup import batch_buckets, choose_batch_size, warm_up
from engine.worker import Server

PARAMS = GenerationParams(width=64, height=64, steps=3, guidance=7.0, sampler="dpmpp_2m")
SPECS = [ImageSpec("a red lighthouse", "", 11), ImageSpec("a blue boat", "fog", 22), ImageSpec("a cat", "", 33)]


def settings(tiny_model: Path, **options: Any) -> EngineSettings:
    return EngineSettings(model=str(tiny_model), device="cpu", max_width=256, max_height=256, **options)


@pytest.fixture(scope="module")
def plain(tiny_model: Path) -> Pipeline:
    return Pipeline.load(settings(tiny_model))


def differences(first: Sequence[Image.Image], second: Sequence[Image.Image]) -> tuple[int, float]:
    """The largest and the mean difference of any pixel level between two lists of images."""
    a = np.stack([np.asarray(image, dtype=np.int16) for image in first])
    b = np.stack([np.asarray(image, dtype=np.int16) for image in second])
    difference = np.abs(a - b)
    return int(difference.max()), float(difference.mean())


def assert_equivalent(
    first: Sequence[Image.Image], second: Sequence[Image.Image], max_level: int = 3, mean: float = 0.5
) -> None:
    worst, average = differences(first, second)
    assert worst <= max_level and average < mean, (worst, average)


# Config: defaults are the plain pipeline, bad values name their key.


def test_defaults_are_the_plain_pipeline(plain: Pipeline) -> None:
    engine = EngineSettings()
    assert (engine.dtype, engine.channels_last, engine.fuse_qkv, engine.compile, engine.low_memory) == (
        "auto", False, False, False, False
    )
    assert engine.batch_size is None and plain.batch_size == engine.max_batch_images
    assert plain.pipe.dtype == torch.float32 and not plain.compiled
    assert {type(p).__name__ for p in plain.pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert plain.pipe.unet.conv_in.weight.is_contiguous()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "fp8"}, r"dtype\s+Input should be 'auto', 'fp16', 'bf16' or 'fp32'"),
        ({"cuda_graphs": True}, "cuda_graphs needs compile: true"),
        ({"compile": True, "cuda_graphs": True, "device": "cpu"}, "cuda_graphs needs a CUDA device"),
        ({"compile_mode": "max-autotune"}, "compile_mode needs compile: true"),
        ({"warm_up_sizes": [[512, 500]]}, r"warm_up_sizes\s+Value error, 512x500: .*multiples of 8"),
        ({"warm_up_sizes": [[2048, 512]]}, "warm_up_sizes: 2048x512 is outside"),
        ({"batch_size": 16}, r"batch_size \(16\) must not exceed max_batch_images \(8\)"),
        ({"batch_size": "fastest"}, r"batch_size\.literal\['auto'\]"),
        ({"low_memory": True, "compile": True}, "low_memory needs compile: false and fuse_qkv: false"),
        ({"low_memory": True, "fuse_qkv": True}, "low_memory needs compile: false and fuse_qkv: false"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EngineSettings(**options)


def test_cuda_graphs_are_refused_at_start_on_a_cpu(tiny_model: Path) -> None:
    # device auto resolves to the CPU here, which the config alone cannot know.
    options = EngineSettings(model=str(tiny_model), device="auto", compile=True, cuda_graphs=True)
    with pytest.raises(OptionError, match="engine.cuda_graphs needs a CUDA device, but the engine runs on cpu"):
        Pipeline.load(options)


async def test_the_engine_process_tells_the_operator_why_it_refused_to_start(tiny_model: Path) -> None:
    options = EngineSettings(model=str(tiny_model), device="auto", compile=True, cuda_graphs=True)
    with pytest.raises(EngineStartError, match="engine.cuda_graphs needs a CUDA device"):
        await EngineProcess(options).start()


# Equivalence: every option gives the plain pipeline's images for the same seeds.


@pytest.mark.parametrize(
    ("options", "max_level", "mean"),
    [
        ({"channels_last": True}, 3, 0.5),
        ({"fuse_qkv": True}, 3, 0.5),
        ({"low_memory": True}, 3, 0.5),
        ({"dtype": "bf16"}, 24, 3.0),  # 8 bits of mantissa: close, not equal
    ],
    ids=["channels_last", "fuse_qkv", "low_memory", "bf16"],
)
def test_option_keeps_the_images(
    plain: Pipeline, tiny_model: Path, options: dict[str, Any], max_level: int, mean: float
) -> None:
    optimised = Pipeline.load(settings(tiny_model, **options))
    assert_equivalent(optimised.generate(PARAMS, SPECS), plain.generate(PARAMS, SPECS), max_level, mean)


def test_options_are_applied(tiny_model: Path) -> None:
    fused = Pipeline.load(settings(tiny_model, fuse_qkv=True, channels_last=True, dtype="bf16"))
    assert {type(p).__name__ for p in fused.pipe.unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    assert fused.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert fused.pipe.dtype == torch.bfloat16
    small = Pipeline.load(settings(tiny_model, low_memory=True))
    assert {type(p).__name__ for p in small.pipe.unet.attn_processors.values()} == {"SlicedAttnProcessor"}
    assert small.pipe.vae.use_slicing and not small.pipe.vae.use_tiling


def test_vae_tiling_leaves_images_up_to_the_tile_size_alone_and_tiles_larger_ones(
    plain: Pipeline, tiny_model: Path
) -> None:
    tiled = Pipeline.load(settings(tiny_model, vae_tiling=True))
    assert tiled.pipe.vae.use_tiling
    assert_equivalent(tiled.generate(PARAMS, SPECS), plain.generate(PARAMS, SPECS))  # the tiny VAE's tile: 64 px
    large = GenerationParams(width=128, height=128, steps=3, sampler="dpmpp_2m")
    worst, _ = differences(tiled.generate(large, SPECS[:1]), plain.generate(large, SPECS[:1]))
    assert worst > 3  # decoded as four blended tiles: why tiling is an option of its own, off by default


# torch.compile: warmed-up shapes compiled once, padded batches, no compile mid-service.


@pytest.fixture(scope="module")
def compiled(tiny_model: Path) -> Pipeline:
    options = settings(tiny_model, compile=True, warm_up_sizes=[[64, 64]], batch_size=4, default_sampler="dpmpp_2m")
    pipeline = Pipeline.load(options, compile_backend="eager")
    warm_up(pipeline, options)
    return pipeline


def test_compiled_images_match_the_plain_ones(compiled: Pipeline, plain: Pipeline) -> None:
    assert isinstance(compiled.pipe.unet, torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(compiled.pipe.vae.decoder, torch._dynamo.eval_frame.OptimizedModule)
    unet_batches: list[int] = []
    spy = compiled.pipe.unet.register_forward_pre_hook(lambda module, args: unet_batches.append(len(args[0])))
    try:
        with torch.compiler.set_stance("fail_on_recompile"):
            three = compiled.generate(PARAMS, SPECS)
    finally:
        spy.remove()
    assert set(unet_batches) == {8}  # padded to the compiled batch of 4 images, twice that with guidance
    assert len(three) == 3
    assert_equivalent(three, plain.generate(PARAMS, SPECS))


def test_after_warm_up_no_job_compiles(compiled: Pipeline, plain: Pipeline) -> None:
    """Any batch size, any sampler at a compiled size; and an uncompiled size runs without compiling."""
    wide = GenerationParams(width=96, height=64, steps=2, sampler="euler")
    with torch.compiler.set_stance("fail_on_recompile"):
        for sampler in ("euler", "ddim", "euler_a"):  # float and integer timesteps
            params = GenerationParams(width=64, height=64, steps=2, sampler=sampler)
            for count in (1, 2, 4):
                assert len(compiled.generate(params, SPECS[:1] * count)) == count
        assert_equivalent(compiled.generate(wide, SPECS[:2]), plain.generate(wide, SPECS[:2]))


def test_batch_buckets_cover_every_batch_up_to_the_batch_size() -> None:
    assert batch_buckets(1) == [1]
    assert batch_buckets(8) == [1, 2, 4, 8]
    assert batch_buckets(6) == [1, 2, 4, 6]


def test_compile_cache_goes_to_the_configured_folder(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    Pipeline.load(settings(tiny_model, compile=True, compile_cache_dir=tmp_path / "kernels"), compile_backend="eager")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "kernels")
    assert (tmp_path / "kernels").is_dir()


# The batch size chosen by measurement.


def test_the_fastest_batch_size_wins_unless_a_smaller_one_is_as_fast() -> None:
    assert choose_batch_size({1: 10.0, 2: 19.0, 4: 30.0, 8: 20.0}) == 4
    assert choose_batch_size({1: 10.0, 2: 19.0, 4: 20.0, 8: 20.5}) == 4  # within 5 %: less waiting, same rate
    assert choose_batch_size({1: 3.0}) == 1


def test_auto_batch_size_measures_up_to_the_size_that_runs_out_of_memory(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = settings(tiny_model, batch_size="auto", max_batch_images=8, warm_up_sizes=[[64, 64]])
    pipeline = Pipeline.load(options)
    generate = pipeline.generate
    measured: list[int] = []

    def small_card(params: GenerationParams, images: Sequence[ImageSpec], on_step: Any = None) -> Any:
        if len(images) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (a small card)")
        measured.append(len(images))
        return generate(params, images, on_step)

    monkeypatch.setattr(pipeline, "generate", small_card)
    warm_up(pipeline, options)
    assert sorted(set(measured)) == [1, 2]
    assert pipeline.batch_size in (1, 2)


# The engine's serving loop: UNet batches of the pipeline's batch size, PNGs encoded on threads, busy time.


def test_server_splits_by_the_batch_size_and_reports_busy_time(plain: Pipeline) -> None:
    job = JobRequest("a", "a lighthouse", (1, 2, 3), PARAMS)
    ours, theirs = multiprocessing.Pipe()
    plain.batch_size = 2
    try:
        with ThreadPoolExecutor(2) as encoder:
            server = Server(theirs, plain, EngineSettings(model="in-process"), EngineFaults(), encoder)
            answer = server.run_batch(RunBatch(1, (job,)))
    finally:
        plain.batch_size = EngineSettings().max_batch_images
    assert isinstance(answer, BatchDone) and answer.busy_seconds > 0 and answer.png_wait_seconds > 0
    steps = []
    while ours.poll():
        steps.append(ours.recv().step)
    assert steps == [0, 1, 2, 2, 2, 3]  # overall progress of two UNet batches: 2 images, then 1
    pngs = [Image.open(io.BytesIO(image.png)) for image in answer.images[0]]
    assert_equivalent(pngs, plain.generate(PARAMS, [ImageSpec(job.prompt, "", seed) for seed in job.seeds]))
