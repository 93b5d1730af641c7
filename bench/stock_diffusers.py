"""Stock diffusers timed at every batch size: the baseline the engine benchmark compares with."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from bench.engine_measure import Cell, mb, release_memory, rss_peak_bytes, timed
from bench.engine_workload import NEGATIVE, PROMPT
from engine.pipeline import SCHEDULERS


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
