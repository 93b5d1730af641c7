"""Warming a pipeline up: settling the batch size, and compiling, at start or in the background.

:func:`warm_up` runs every network once at start and settles ``batch_size:
auto`` (:func:`fastest_batch`). Compiling in the background: a compiling
engine serves at once, uncompiled, and compiles while idle.

A cold start that compiled every shape before serving would keep members
waiting for minutes. Instead the engine reports ready once the model is loaded
and has run once, serves every batch eagerly, and compiles the shapes it will
serve compiled (:func:`warm_up` lists them) one at a
time whenever no batch is waiting: each shape runs compiled from the moment its
compile is done. Compiling on the serving thread, between batches, means a
compile never runs alongside a member's batch (Dynamo and the compile stance
are process-wide), at the cost of a batch that arrives mid-compile waiting for
that one shape.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from engine.config import EngineSettings
from engine.types import GenerationParams

if TYPE_CHECKING:  # torch is imported in the engine process only
    from engine.pipeline import Pipeline

log = logging.getLogger(__name__)

Shape = tuple[tuple[int, int], int]
"""``((width, height), images per UNet batch)``."""
MEASURE_STEPS = 8
"""Denoising steps of each timed run when ``batch_size: auto`` measures the batch sizes."""
BATCH_TOLERANCE = 0.05
"""A batch size this close to the best rate wins over a larger one: same throughput, less waiting."""


def batch_buckets(batch_size: int) -> list[int]:
    """The batch sizes worth compiling for UNet batches of up to ``batch_size``: powers of two below it, and it."""
    return [1 << n for n in range(batch_size.bit_length()) if 1 << n < batch_size] + [batch_size]


def choose_batch_size(rates: dict[int, float]) -> int:
    """The batch size with the most images/s in ``rates``, or the smallest within :data:`BATCH_TOLERANCE` of it."""
    best = max(rates.values())
    return min(batch for batch, rate in rates.items() if rate >= best * (1 - BATCH_TOLERANCE))


def warm_up(pipeline: Pipeline, settings: EngineSettings, *, compile_later: bool = False) -> list[Shape]:
    """Run every network once, so the first member's job does not pay for it; settle the batch size.

    Each start size runs once; ``batch_size: auto`` measures the candidate
    batch sizes at the first. A compiled pipeline compiles every batch size
    a UNet batch can take at each start size, so no member's job waits for
    a compile; with ``compile_later`` it only runs the first size once
    uncompiled and returns the shapes left to compile (see
    :class:`BackgroundCompile`), so the engine can serve meanwhile.
    """
    from engine.pipeline import WARM_UP_STEPS, ImageSpec

    sizes, sampler = settings.start_sizes, settings.default_sampler
    if settings.batch_size == "auto":
        pipeline.batch_size = fastest_batch(pipeline, sizes[0], settings.max_batch_images, sampler,
                                            compile_shapes=not compile_later)  # fmt: skip
    batches = batch_buckets(pipeline.batch_size) if pipeline.compiled else [1]
    shapes = [(size, batch) for size in sizes for batch in batches]
    if compile_later and pipeline.compiled:
        eager = GenerationParams(width=sizes[0][0], height=sizes[0][1], steps=WARM_UP_STEPS, sampler=sampler)
        pipeline.generate(eager, [ImageSpec("warm-up", "", 0)])  # a shape not compiled yet runs eagerly
        return [(size, batch) for size, batch in shapes if not pipeline.is_warm(size, batch)]
    for size, batch in shapes:
        pipeline.warm_shape(size, batch, sampler)
    return []


def fastest_batch(pipeline: Pipeline, size: tuple[int, int], max_images: int, sampler: str, *,
                  compile_shapes: bool) -> int:  # fmt: skip
    """Time each candidate batch size at ``size``; the fastest in images/s (or a smaller one within 5 %).

    A compiled pipeline compiles each candidate first, unless not ``compile_shapes``: then it measures them
    uncompiled, so the start does not wait for compiles (the chosen size's compile comes later).
    """
    import torch

    from engine.pipeline import WARM_UP_STEPS, ImageSpec

    params = GenerationParams(width=size[0], height=size[1], steps=MEASURE_STEPS, sampler=sampler)
    rates: dict[int, float] = {}
    for batch in batch_buckets(max_images):
        images = [ImageSpec("a lighthouse on a cliff", "blurry", seed) for seed in range(batch)]
        try:
            if compile_shapes:
                pipeline.warm_shape(size, batch, sampler)
            else:
                pipeline.generate(replace(params, steps=WARM_UP_STEPS), images)
            seconds = []
            for _ in range(2):
                started = time.perf_counter()
                pipeline.generate(params, images)
                seconds.append(time.perf_counter() - started)
        except torch.cuda.OutOfMemoryError:
            if not rates:
                raise
            log.info("batch size %d runs out of GPU memory: measuring no further", batch)
            break
        rates[batch] = batch / min(seconds)
    if pipeline.device.type == "cuda":
        torch.cuda.empty_cache()  # outside the handler, once the failed batch's tensors are released
    chosen = choose_batch_size(rates)
    measured = ", ".join(f"{batch}: {rate:.2f}" for batch, rate in rates.items())
    log.info("images/s by batch size at %dx%d: %s; chose %d", *size, measured, chosen)
    return chosen


class BackgroundCompile:
    """The shapes a compiling engine has still to compile, compiled one per call of :meth:`compile_next`."""

    def __init__(self, pipeline: Pipeline, shapes: Sequence[Shape], sampler: str) -> None:
        self.pipeline = pipeline
        self.sampler = sampler
        self.pending: deque[Shape] = deque(shapes)
        self.total = len(shapes)
        self.failed = 0

    @property
    def done(self) -> bool:
        """Whether every shape is compiled (or failed to, and runs uncompiled)."""
        return not self.pending

    def compile_next(self) -> None:
        """Compile the next shape; one that fails is logged and keeps running uncompiled."""
        size, batch = self.pending.popleft()
        try:
            self.pipeline.warm_shape(size, batch, self.sampler)
        except Exception:
            self.failed += 1
            log.exception("could not compile %dx%d, %d images per batch: it runs uncompiled", *size, batch)

    @property
    def detail(self) -> str:
        """How far the compile is, for the engine's health."""
        compiled = self.total - len(self.pending) - self.failed
        if not self.total:
            return "ready"
        if self.pending:
            return f"ready, compiling in the background: {compiled} of {self.total} shapes compiled"
        failed = f", {self.failed} failed (uncompiled)" if self.failed else ""
        return f"ready, {compiled} of {self.total} shapes compiled{failed}"
