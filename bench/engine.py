"""Benchmark the engine: images/s and peak memory, direct pipeline calls vs calls through the engine process.

    python bench/engine.py --arch tiny --device cpu
    python bench/engine.py --arch sd15 --device cuda        # 512x512, 25 steps, CFG, fp16

Models are built from configs with random weights (nothing is downloaded): the
arithmetic of ``sd15`` is that of Stable Diffusion 1.5. For every batch size the
same images are rendered, alternately, by the pipeline in this process and by
the engine process through its client; both include PNG encoding, so the ratio
of the two rates is the cost of the process boundary.
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
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import torch  # noqa: E402

from engine.client import EngineProcess  # noqa: E402
from engine.config import EngineSettings  # noqa: E402
from engine.pipeline import ImageSpec, Pipeline  # noqa: E402
from engine.tiny import write_random_sd15, write_tiny_model  # noqa: E402
from engine.types import SAMPLERS, GenerationParams, JobRequest, Outcome  # noqa: E402

DEFAULTS = {"tiny": {"size": 64, "steps": 4}, "sd15": {"size": 512, "steps": 25}}


@dataclass
class Row:
    batch: int
    direct_s: float
    """Median seconds per batch, direct pipeline calls."""
    engine_s: float
    """Median seconds per batch through the engine process."""
    direct_peak_mb: float
    engine_peak_mb: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(DEFAULTS), default="tiny")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="1,2,4,8", help="comma-separated batch sizes (images per batch)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: 4 tiny, 25 sd15)")
    parser.add_argument("--size", type=int, help="width and height in pixels (default: 64 tiny, 512 sd15)")
    parser.add_argument("--sampler", choices=SAMPLERS, default="dpmpp_2m")
    parser.add_argument("--guidance", type=float, default=7.0, help="CFG scale (above 1 doubles the UNet batch)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per batch size and path")
    parser.add_argument("--model-dir", type=Path, help="where to write the random model (default: a temporary folder)")
    args = parser.parse_args()
    args.batches = [int(size) for size in args.batches.split(",")]
    args.steps = args.steps or DEFAULTS[args.arch]["steps"]
    args.size = args.size or DEFAULTS[args.arch]["size"]
    return args


def write_model(arch: str, dest: Path) -> Path:
    if (dest / "model_index.json").exists():
        return dest
    started = time.perf_counter()
    # SD 1.5 is stored in fp16 as its real checkpoints are; the engine loads it in fp32 on a CPU.
    path = write_tiny_model(dest) if arch == "tiny" else write_random_sd15(dest)
    print(f"wrote random {arch} model to {path} in {time.perf_counter() - started:.1f} s")
    return path


def specs(batch: int) -> list[ImageSpec]:
    return [ImageSpec("a lighthouse on a cliff at dusk, oil painting", "blurry", seed) for seed in range(batch)]


def mb(size: int) -> float:
    return size / 2**20


async def measure(args: argparse.Namespace, model: Path) -> tuple[list[Row], float]:
    settings = EngineSettings(
        model=str(model),
        device=args.device,
        max_batch_images=max(args.batches),
        max_width=max(1024, args.size),
        max_height=max(1024, args.size),
    )
    params = GenerationParams(
        width=args.size, height=args.size, steps=args.steps, guidance=args.guidance, sampler=args.sampler
    )
    pipeline = Pipeline.load(settings)
    pipeline.warm_up(params)
    started = time.perf_counter()
    async with EngineProcess(settings) as engine:
        start_s = time.perf_counter() - started
        rows = []
        for batch in args.batches:
            images = specs(batch)
            job = JobRequest(
                f"bench-{batch}",
                images[0].prompt,
                tuple(spec.seed for spec in images),
                params,
                images[0].negative_prompt,
            )
            pipeline.render(params, images)  # warm this shape on both paths
            await engine.generate([job])
            pipeline.reset_peak_memory()
            direct, through_engine = [], []
            for _ in range(args.repeats):  # alternate, so drift in a shared machine's speed hits both paths alike
                started = time.perf_counter()
                pipeline.render(params, images)
                direct.append(time.perf_counter() - started)
                started = time.perf_counter()
                [result] = await engine.generate([job])
                through_engine.append(time.perf_counter() - started)
                assert result.outcome == Outcome.DONE, result.error
            peaks = mb(pipeline.peak_memory_bytes()), engine.health().extra["peak_memory_mb"]
            rows.append(Row(batch, statistics.median(direct), statistics.median(through_engine), *peaks))
    del pipeline
    gc.collect()
    return rows, start_s


def report(args: argparse.Namespace, rows: list[Row], start_s: float) -> None:
    memory = "peak GPU MiB (max_memory_allocated)" if args.device == "cuda" else "peak RSS MiB (whole process so far)"
    dtype = "fp16" if args.device == "cuda" else "fp32"
    print(
        f"\n{args.arch} on {args.device} ({dtype}, SDPA): {args.size}x{args.size}, {args.steps} steps, "
        f"{args.sampler}, CFG {args.guidance:g}, median of {args.repeats} runs per cell"
    )
    print(f"engine start to ready: {start_s:.1f} s; memory: {memory}")
    columns = ("batch", "direct img/s", "engine img/s", "direct/engine", "steps/s", "mem direct", "mem engine")
    header = " | ".join(f"{name:>{max(len(name), 6)}}" for name in columns)
    print(header + "\n" + "-" * len(header))
    for row in rows:
        direct, engine = row.batch / row.direct_s, row.batch / row.engine_s
        cells = (
            row.batch,
            f"{direct:.2f}",
            f"{engine:.2f}",
            f"{direct / engine:.3f}",
            f"{args.steps / row.engine_s:.1f}",
        )
        cells += (f"{row.direct_peak_mb:.0f}", f"{row.engine_peak_mb:.0f}")
        print(" | ".join(f"{cell:>{max(len(name), 6)}}" for name, cell in zip(columns, cells, strict=True)))
    print("steps/s: denoising steps of the whole batch per second, through the engine")
    print("direct/engine: direct pipeline calls' rate over the engine process's (1.02: the boundary costs 2 %)")


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    with tempfile.TemporaryDirectory(prefix=f"dreamqueue-{args.arch}-") as scratch:
        model = write_model(args.arch, args.model_dir or Path(scratch) / args.arch)
        rows, start_s = asyncio.run(measure(args, model))
    report(args, rows, start_s)


if __name__ == "__main__":
    main()
