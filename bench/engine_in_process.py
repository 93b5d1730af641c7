"""The engine's own pipeline timed in this process, without the process boundary: as run, and each option alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.engine_measure import release_memory, timed
from bench.engine_workload import NEGATIVE, PROMPT, engine_settings, params_of
from engine.config import EngineSettings
from engine.pipeline import ImageSpec, Pipeline
from engine.warmup import warm_up


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
