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
import json  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from bench.engine_in_process import ablate, in_process_seconds  # noqa: E402
from bench.engine_process import measure_engine  # noqa: E402
from bench.engine_report import report, report_ablation  # noqa: E402
from bench.engine_workload import engine_settings, write_checker, write_model  # noqa: E402
from bench.stock_diffusers import measure_stock  # noqa: E402
from engine.types import SAMPLERS  # noqa: E402

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
