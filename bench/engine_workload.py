"""What the engine benchmark renders: the random model and safety checker, the prompt, parameters, settings and jobs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from engine.config import EngineSettings
from engine.tiny import write_random_sd15, write_safety_checker, write_tiny_model
from engine.types import GenerationParams, JobRequest

PROMPT, NEGATIVE = "a lighthouse on a cliff at dusk, oil painting", "blurry"
JOB_IMAGES = 8
"""Images per job (a job holds at most 9); larger batches are several jobs sharing one batch."""


def write_checker(args: argparse.Namespace, dest: Path) -> str:
    """The ``engine.safety_checker`` setting of the run: a random checker written to ``dest``, or none."""
    if args.safety_checker == "none":
        return "none"
    if not (dest / "config.json").exists():
        sd = args.arch == "sd15"
        write_safety_checker(dest, sd_size=sd, dtype=torch.float16 if sd else torch.float32)
    return str(dest)


def write_model(arch: str, dest: Path) -> Path:
    """The random ``arch`` model in ``dest``, written there unless it already is."""
    if (dest / "model_index.json").exists():
        return dest
    started = time.perf_counter()
    # SD 1.5 is stored in fp16 as its real checkpoints are.
    path = write_tiny_model(dest) if arch == "tiny" else write_random_sd15(dest)
    print(f"wrote random {arch} model to {path} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def params_of(args: argparse.Namespace) -> GenerationParams:
    """The generation parameters of the command line: size, steps, guidance, sampler."""
    return GenerationParams(
        width=args.size, height=args.size, steps=args.steps, guidance=args.guidance, sampler=args.sampler
    )


def engine_settings(args: argparse.Namespace, model: Path, **options: Any) -> EngineSettings:
    """Engine settings for ``model`` on the run's device, sizes and sampler, with the engine ``options``."""
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
