"""The engine measured through its process and client: batch sizes, start-up, duty cycle and low-memory mode."""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.engine_measure import Cell, UtilizationSampler
from bench.engine_workload import engine_settings, jobs_for
from engine.client import EngineProcess, EngineStartError
from engine.config import EngineSettings
from engine.types import Outcome


@dataclass
class EngineRun:
    """The engine's figures: per batch size, start-up, duty cycle and low-memory mode."""

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
    """Render ``images`` images through ``engine`` as jobs sharing one batch; every job must succeed."""
    results = await engine.generate(jobs_for(args, images, f"b{images}"))
    assert all(result.outcome == Outcome.DONE for result in results), [result.error for result in results]


async def measure_engine(args: argparse.Namespace, model: Path, scratch: Path) -> EngineRun:
    """The engine at every batch size, its start-up cold and with the compile cache, duty cycle, low-memory mode."""
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
    with sampler or contextlib.nullcontext():  # no utilization sampler off CUDA
        for _ in range(args.stream):
            await run_batch(engine, args, batch)
    wall = time.perf_counter() - started
    busy = engine.health().extra["busy_seconds"] - busy_before
    return busy / wall, sampler.mean() if sampler else None



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
