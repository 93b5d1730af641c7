"""Benchmark the engine against stock diffusers: images/s, steps/s, peak memory, start-up, duty cycle.

    python bench/engine.py --arch sd15 --device cuda     # 512x512, DPM++ 2M, 25 steps, CFG 7, batches 1..16
    python bench/engine.py --arch tiny --device cpu      # the same table for the tiny model on a CPU
    python bench/engine.py --arch tiny --device cpu --ablate   # also each engine option on and off

Models are built from configs with random weights (nothing is downloaded): the
arithmetic of ``sd15`` is that of Stable Diffusion 1.5. Needs torch, diffusers,
transformers and pydantic, with the repository on the path (no install).

Stock diffusers is ``StableDiffusionPipeline.from_pretrained`` (fp16 on CUDA,
fp32 on a CPU, SDPA attention, default settings) with the DPM++ 2M scheduler,
called with a list of prompts; its images stay PIL images. The engine runs in
its own process with the options of ``--set`` (a preset per device by
default), and its figures include PNG encoding and the process boundary.

The engine checks every image with a random safety checker of the arch's size
(``--safety-checker none`` to leave it out, as stock diffusers is run without
one): its cost per image is printed next to the generation time per image.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the package it measures: make `import engine` find the package.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402

from engine.client import EngineProcess, EngineStartError  # noqa: E402
from engine.config import EngineSettings  # noqa: E402
from engine.pipeline import SCHEDULERS, ImageSpec, Pipeline  # noqa: E402
from engine.tiny import write_random_sd15, write_safety_checker, write_tiny_model  # noqa: E402
from engine.types import SAMPLERS, GenerationParams, JobRequest, Outcome  # noqa: E402
from engine.warmup import warm_up  # noqa: E402

DEFAULTS = {"tiny": {"size": 64, "steps": 4}, "sd15": {"size": 512, "steps": 25}}
PRESETS: dict[str, dict[str, Any]] = {
    # The combination expected to be fastest on a recent NVIDIA GPU; not yet measured there (use --ablate).
    "cuda": {
        "dtype": "fp16",
        "channels_last": True,
        "fuse_qkv": True,
        "compile": True,
        "cuda_graphs": True,
        "batch_size": "auto",
    },
    # On a 2-core CPU with the tiny model only compile paid (1.07x-1.25x in-process, see --ablate), and a cold
    # start then compiles for about two minutes; --set compile=true measures it.
    "cpu": {"batch_size": "auto"},
}
PROMPT, NEGATIVE = "a lighthouse on a cliff at dusk, oil painting", "blurry"
JOB_IMAGES = 8
"""Images per job (a job holds at most 9); larger batches are several jobs sharing one batch."""


@dataclass
class Cell:
    seconds: float
    """Median seconds per batch."""
    peak_mb: float
    generating_s: float = math.nan
    """Device seconds generating per image (the engine's own timing, without the check and PNGs)."""
    checking_s: float = math.nan
    """Seconds in the image safety check per image (preprocessing included)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(DEFAULTS), default="tiny")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="1,2,4,8,16", help="comma-separated batch sizes (images per batch)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: 4 tiny, 25 sd15)")
    parser.add_argument("--size", type=int, help="width and height in pixels (default: 64 tiny, 512 sd15)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="dpmpp_2m")
    parser.add_argument("--guidance", type=float, default=7.0, help="CFG scale (above 1 doubles the UNet batch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per batch size")
    parser.add_argument("--stream", type=int, default=8, help="batches in the continuous stream (duty cycle)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an engine option (JSON value), e.g. --set compile=false; replaces the device's preset entirely",
    )
    parser.add_argument("--ablate", action="store_true", help="also time each engine option on and off, in-process")
    parser.add_argument("--model-dir", type=Path, help="where to write the random model (default: a temporary folder)")
    parser.add_argument("--safety-checker", choices=["random", "none"], default="random",
                        help="check every image with a random checker of the arch's size, or not")  # fmt: skip
    args = parser.parse_args()
    args.batches = [int(size) for size in args.batches.split(",")]
    args.steps = args.steps or DEFAULTS[args.arch]["steps"]
    args.size = args.size or DEFAULTS[args.arch]["size"]
    args.options = dict(_option(item) for item in args.set) if args.set else PRESETS[args.device]
    return args


def _option(item: str) -> tuple[str, Any]:
    key, _, value = item.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word: auto, bf16, ...


def write_checker(args: argparse.Namespace, dest: Path) -> str:
    """The ``engine.safety_checker`` setting of the run: a random checker written to ``dest``, or none."""
    if args.safety_checker == "none":
        return "none"
    if not (dest / "config.json").exists():
        sd = args.arch == "sd15"
        write_safety_checker(dest, sd_size=sd, dtype=torch.float16 if sd else torch.float32)
    return str(dest)


def write_model(arch: str, dest: Path) -> Path:
    if (dest / "model_index.json").exists():
        return dest
    started = time.perf_counter()
    # SD 1.5 is stored in fp16 as its real checkpoints are.
    path = write_tiny_model(dest) if arch == "tiny" else write_random_sd15(dest)
    print(f"wrote random {arch} model to {path} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def mb(size: float) -> float:
    return size / 2**20


def rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def timed(run: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` runs of ``run``."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def params_of(args: argparse.Namespace) -> GenerationParams:
    return GenerationParams(
        width=args.size, height=args.size, steps=args.steps, guidance=args.guidance, sampler=args.sampler
    )


def engine_settings(args: argparse.Namespace, model: Path, **options: Any) -> EngineSettings:
    limit = max(1024, args.size)
    return EngineSettings(
        model=str(model),
        device=args.device,
        max_batch_images=max(args.batches),
        max_width=limit,
        max_height=limit,
        default_sampler=args.sampler,
        warm_up_sizes=[[args.size, args.size]],
        **options,
    )


def jobs_for(args: argparse.Namespace, images: int, tag: str) -> list[JobRequest]:
    """``images`` images as jobs of at most :data:`JOB_IMAGES` that share one batch."""
    seeds = list(range(images))
    return [
        JobRequest(f"{tag}-{start}", PROMPT, tuple(seeds[start : start + JOB_IMAGES]), params_of(args), NEGATIVE)
        for start in range(0, images, JOB_IMAGES)
    ]


# Stock diffusers


def measure_stock(args: argparse.Namespace, model: Path) -> tuple[dict[int, Cell], float]:
    """Stock diffusers at every batch size, and its seconds from loading to the first image."""
    started = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(
        model, torch_dtype=torch.float16 if args.device == "cuda" else torch.float32
    ).to(args.device)
    scheduler_class, overrides = SCHEDULERS[args.sampler]
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **overrides)
    pipe.set_progress_bar_config(disable=True)

    def run(batch: int) -> None:
        pipe(
            [PROMPT] * batch,
            negative_prompt=[NEGATIVE] * batch,
            width=args.size,
            height=args.size,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=[torch.Generator("cpu").manual_seed(seed) for seed in range(batch)],
        )

    run(1)
    first_image_s = time.perf_counter() - started
    cells = {}
    for batch in args.batches:
        run(batch)  # warm this batch size
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = timed(lambda: run(batch), args.repeats)  # noqa: B023
        peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else rss_peak_bytes()
        cells[batch] = Cell(seconds, mb(peak))
        print(f"stock batch {batch}: {batch / seconds:.2f} images/s", flush=True)
    del pipe
    release_memory()
    return cells, first_image_s


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# The engine, through its process and client


@dataclass
class EngineRun:
    cells: dict[int, Cell]
    first_image_cold_s: float
    first_image_cached_s: float
    batch_size: int
    duty: float
    """Device time generating / wall time, over a continuous stream of batches."""
    nvml_utilization: float | None
    low_memory_peak_mb: float
    low_memory_seconds: float


async def first_image(settings: EngineSettings, args: argparse.Namespace) -> tuple[EngineProcess, float]:
    """Start an engine and render one image: the engine and the seconds from start to that image."""
    started = time.perf_counter()
    engine = EngineProcess(settings)
    await engine.start()
    [result] = await engine.generate(jobs_for(args, 1, "first"))
    assert result.outcome == Outcome.DONE, result.error
    return engine, time.perf_counter() - started


async def run_batch(engine: EngineProcess, args: argparse.Namespace, images: int) -> None:
    results = await engine.generate(jobs_for(args, images, f"b{images}"))
    assert all(result.outcome == Outcome.DONE for result in results), [result.error for result in results]


async def measure_engine(args: argparse.Namespace, model: Path, scratch: Path) -> EngineRun:
    settings = engine_settings(args, model, compile_cache_dir=scratch / "compile-cache", **args.options)
    engine, cold_s = await first_image(settings, args)
    print(f"engine ready, first image after {cold_s:.1f} s (cold)", flush=True)
    cells = {}
    try:
        for batch in args.batches:
            await run_batch(engine, args, batch)  # warm this batch size
            seconds = []
            before = engine.health().extra
            for _ in range(args.repeats):
                started = time.perf_counter()
                await run_batch(engine, args, batch)
                seconds.append(time.perf_counter() - started)
            after, images = engine.health().extra, batch * args.repeats
            cells[batch] = Cell(
                statistics.median(seconds), after["peak_memory_mb"],
                (after["busy_seconds"] - before["busy_seconds"]) / images,
                (after["safety_seconds"] - before["safety_seconds"]) / images,
            )  # fmt: skip
            print(f"engine batch {batch}: {batch / cells[batch].seconds:.2f} images/s", flush=True)
        batch_size = int(engine.health().extra["batch_size"])
        duty, nvml = await duty_cycle(engine, args, batch_size)
    finally:
        await engine.close()
    engine, cached_s = await first_image(settings, args)  # the same compile cache, now filled
    await engine.close()
    print(f"engine restarted, first image after {cached_s:.1f} s (compile cache)", flush=True)
    low_memory_peak_mb, low_memory_s = await measure_low_memory(args, model)
    return EngineRun(cells, cold_s, cached_s, batch_size, duty, nvml, low_memory_peak_mb, low_memory_s)


async def duty_cycle(engine: EngineProcess, args: argparse.Namespace, batch: int) -> tuple[float, float | None]:
    """Run ``args.stream`` batches back to back, as the scheduler does: busy fraction, and NVML's if it reads."""
    sampler = UtilizationSampler() if args.device == "cuda" else None
    busy_before = engine.health().extra["busy_seconds"]
    started = time.perf_counter()
    with sampler or _nothing():
        for _ in range(args.stream):
            await run_batch(engine, args, batch)
    wall = time.perf_counter() - started
    busy = engine.health().extra["busy_seconds"] - busy_before
    return busy / wall, sampler.mean() if sampler else None


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class UtilizationSampler:
    """Samples ``torch.cuda.utilization()`` (NVML: share of time a kernel ran) every 50 ms on a thread."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> UtilizationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # no pynvml / NVML on this box: the duty cycle from CUDA events stands alone
                return

    def mean(self) -> float | None:
        return statistics.mean(self.samples) / 100 if self.samples else None


async def measure_low_memory(args: argparse.Namespace, model: Path) -> tuple[float, float]:
    """Peak memory and seconds of one image in low-memory mode (no compile, no fused attention); NaN if it fails."""
    dtype = args.options.get("dtype", "auto")
    settings = engine_settings(args, model, low_memory=True, dtype=dtype, batch_size=1)
    try:
        async with EngineProcess(settings) as engine:
            await run_batch(engine, args, 1)  # warm at this size
            started = time.perf_counter()
            await run_batch(engine, args, 1)
            seconds = time.perf_counter() - started
            return engine.health().extra["peak_memory_mb"], seconds
    except EngineStartError as exc:  # e.g. no accelerate for model CPU offload on a bare box
        print(f"low-memory mode did not start: {exc}", flush=True)
        return math.nan, math.nan


# Each option on and off, in-process


def in_process_seconds(args: argparse.Namespace, settings: EngineSettings, batches: list[int]) -> dict[int, float]:
    """Median seconds per batch of the engine's own pipeline called in this process: no process boundary.

    Batches are cut into the pipeline's batch size as the engine process cuts them.
    """
    pipeline = Pipeline.load(settings)
    try:
        warm_up(pipeline, settings)
        seconds = {}
        for batch in batches:
            images = [ImageSpec(PROMPT, NEGATIVE, seed) for seed in range(batch)]
            chunks = [images[i : i + pipeline.batch_size] for i in range(0, batch, pipeline.batch_size)]

            def run(chunks: list[list[ImageSpec]] = chunks) -> None:
                for chunk in chunks:
                    pipeline.render(params_of(args), chunk)

            run()  # warm this batch size
            seconds[batch] = timed(run, args.repeats)
        return seconds
    finally:
        del pipeline
        release_memory()


def ablate(args: argparse.Namespace, model: Path, scratch: Path) -> list[tuple[str, float, float]]:
    """Images/s of the plain pipeline with each option turned on alone, at the largest batch size."""
    batch = max(args.batches)
    variants: dict[str, dict[str, Any]] = {
        "channels_last": {"channels_last": True},
        "fuse_qkv": {"fuse_qkv": True},
        "dtype bf16": {"dtype": "bf16"},
        "compile": {"compile": True},
        "low_memory": {"low_memory": True},
    }
    if args.device == "cuda":
        variants["compile + cuda_graphs"] = {"compile": True, "cuda_graphs": True}
    else:
        variants["dtype fp16"] = {"dtype": "fp16"}

    def rate(options: dict[str, Any]) -> float:
        settings = engine_settings(
            args, model, batch_size=batch, compile_cache_dir=scratch / "ablate-cache", **options
        )
        return batch / in_process_seconds(args, settings, [batch])[batch]

    plain = rate({})
    rows = []
    for name, options in variants.items():
        rows.append((name, plain, rate(options)))
        print(f"ablate {name}: {rows[-1][2]:.2f} images/s (plain {plain:.2f})", flush=True)
    return rows


# Report


def report(
    args: argparse.Namespace, stock: dict[int, Cell], stock_first_s: float, run: EngineRun, direct: dict[int, float]
) -> None:
    cuda = args.device == "cuda"
    what = "GPU" if cuda else "CPU, tiny model" if args.arch == "tiny" else "CPU"
    memory = "peak GPU MiB (max_memory_allocated)" if cuda else "peak RSS MiB of the process so far"
    options = ", ".join(f"{key}={value}" for key, value in args.options.items()) or "defaults"
    print(
        f"\n== {args.arch} on {args.device} ({what} figures): {args.size}x{args.size}, {args.steps} steps, "
        f"{args.sampler}, CFG {args.guidance:g}, median of {args.repeats} runs per cell"
    )
    print(f"stock: diffusers {'fp16' if cuda else 'fp32'}, SDPA, defaults; engine options: {options}")
    print(f"engine batch size (images per UNet batch): {run.batch_size}; memory: {memory}")
    columns = ("batch", "stock img/s", "engine img/s", "x stock", "x stock b1", "stock steps/s", "engine steps/s")
    columns += ("stock mem", "engine mem", "in-process img/s", "boundary")
    widths = [max(len(name), 6) for name in columns]
    header = " | ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True))
    print(header + "\n" + "-" * len(header))
    base = 1 / stock[args.batches[0]].seconds if args.batches[0] == 1 else None
    for batch in args.batches:
        ours, theirs = run.cells[batch], stock[batch]
        engine_rate, stock_rate = batch / ours.seconds, batch / theirs.seconds
        cells = (
            batch,
            f"{stock_rate:.2f}",
            f"{engine_rate:.2f}",
            f"{engine_rate / stock_rate:.2f}",
            f"{engine_rate / base:.2f}" if base else "-",
            f"{args.steps / theirs.seconds:.1f}",
            f"{args.steps / ours.seconds:.1f}",
            f"{theirs.peak_mb:.0f}",
            f"{ours.peak_mb:.0f}",
            f"{batch / direct[batch]:.2f}",
            f"{ours.seconds / direct[batch] - 1:+.1%}",
        )
        print(" | ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True)))
    print("steps/s: denoising steps of the whole batch per second, end to end (decode and, for the engine, PNGs)")
    if args.safety_checker != "none":
        cells = {batch: run.cells[batch] for batch in args.batches}
        costs = ", ".join(
            f"batch {batch}: {cell.checking_s * 1000:.1f} ms vs {cell.generating_s * 1000:.1f} ms "
            f"({cell.checking_s / cell.generating_s:.1%})"
            for batch, cell in cells.items()
        )
        print(f"safety check per image (random {args.arch}-sized checker, batched, preprocessing included) vs "
              f"generation per image: {costs}")  # fmt: skip
    print("boundary: engine time / the same pipeline called in this process - 1 (what the process boundary costs, "
          "and the safety check, which the in-process pipeline does not run)")  # fmt: skip
    print(
        f"time to first image: stock (load + 1 image) {stock_first_s:.1f} s; engine from start, cold "
        f"{run.first_image_cold_s:.1f} s, with the compile cache {run.first_image_cached_s:.1f} s"
    )
    nvml = f"{run.nvml_utilization:.0%}" if run.nvml_utilization is not None else "n/a"
    print(
        f"duty cycle over {args.stream} back-to-back batches of {run.batch_size}: {run.duty:.0%} "
        f"({'GPU time from CUDA events' if cuda else 'time in generate'} / wall); NVML utilization: {nvml}"
    )
    print(
        f"low-memory mode, 1 image: peak {run.low_memory_peak_mb:.0f} MiB, {run.low_memory_seconds:.2f} s "
        f"({memory})"
    )


def report_ablation(rows: list[tuple[str, float, float]], batch: int) -> None:
    print(f"\neach option alone vs the plain engine pipeline, in-process, batch {batch}:")
    for name, plain, on in rows:
        print(f"  {name:>22}: off {plain:7.2f} img/s, on {on:7.2f} img/s ({on / plain:.2f}x)")


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    with tempfile.TemporaryDirectory(prefix=f"dreamqueue-{args.arch}-") as scratch_dir:
        scratch = Path(scratch_dir)
        model = write_model(args.arch, args.model_dir or scratch / args.arch)
        args.options = {**args.options, "safety_checker": write_checker(args, model.parent / f"{args.arch}-checker")}
        stock, stock_first_s = measure_stock(args, model)
        run = asyncio.run(measure_engine(args, model, scratch))
        # The engine's own UNet batch size: "auto" measured apart could settle on another and skew the boundary.
        options = {**args.options, "batch_size": run.batch_size}
        settings = engine_settings(args, model, compile_cache_dir=scratch / "compile-cache", **options)
        direct = in_process_seconds(args, settings, args.batches)
        rows = ablate(args, model, scratch) if args.ablate else []
    report(args, stock, stock_first_s, run, direct)
    if rows:
        report_ablation(rows, max(args.batches))


if __name__ == "__main__":
    main()
