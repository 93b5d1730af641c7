"""The engine process: loads the model once, then serves batches sent by the client over a pipe.

:func:`serve` is the process's entry point (started with ``spawn`` by
:class:`engine.client.EngineProcess`). This module imports no torch at import
time, so the client can name :func:`serve` as the process target; torch and
diffusers are imported inside the child.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from engine import start_images
from engine.backoff import is_out_of_memory, run_in_chunks
from engine.config import EngineSettings
from engine.model_source import announce, describe_failure, loading_settings, quiet_optional_backends
from engine.pnginfo import encode_png
from engine.preview import due, job_previews
from engine.protocol import (
    BatchDone,
    BatchFailed,
    BatchStopped,
    Compiled,
    EngineFaults,
    Interrupt,
    Ready,
    RunBatch,
    Shutdown,
    StartFailed,
    Step,
)
from engine.types import GeneratedImage, SafetyVerdict
from engine.warmup import BackgroundCompile, warm_up

if TYPE_CHECKING:
    import torch

    from engine.models import Models
    from engine.pipeline import ImageSpec, Pipeline
    from engine.safety import SafetyCheck

log = logging.getLogger(__name__)

INTERNAL_ERROR = "The image engine hit an internal error on this batch."

PNG_THREADS = min(4, os.cpu_count() or 1)
"""Threads that encode PNGs while the next UNet batch runs (zlib lets go of the GIL while it compresses)."""


def serve(conn: Connection, settings: EngineSettings, faults: EngineFaults, log_level: int) -> None:
    """The engine process's main: load and warm the model, report ready, serve batches until shut down.

    A compiling engine reports ready before it compiles, and compiles while it has no batch to run
    (:mod:`engine.warmup`).
    """
    logging.basicConfig(level=log_level, format="%(asctime)s engine[%(process)d] %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    quiet_optional_backends()
    pipeline = None
    try:
        # torch is imported here, in the engine process only
        from engine.models import ModelError, fetch_all
        from engine.optimize import OptionError
        from engine.pipeline import Pipeline
        from engine.safety import SafetyCheck, SafetyCheckError

        announce(settings)
        loading = loading_settings(settings)
        pipeline = Pipeline.load(loading)
        fetch_all(loading)
        safety = SafetyCheck.load(loading, pipeline.device, pipeline.pipe.dtype)
        log.info("warming up: %s", "one batch uncompiled (compiling follows, between batches)" if settings.compile
                 else "the first batch of each size")  # fmt: skip
        background = BackgroundCompile(pipeline, warm_up(pipeline, settings, compile_later=True), settings.default_sampler)
        if safety is None:
            log.warning("images are NOT checked for safety: no classifier (engine.safety_checker: %s)",
                        settings.safety_checker)  # fmt: skip
        else:
            safety.warm_up()
    except Exception as exc:
        if isinstance(exc, OptionError | SafetyCheckError | ModelError):
            reason = str(exc)
        elif pipeline is None:  # the model itself could not be had: one line says why, no traceback
            log.debug("could not load the model", exc_info=True)
            reason = describe_failure(settings, exc)
        else:
            log.exception("could not warm up the model")
            reason = f"engine.model: {settings.model} loaded, but its first batch failed: {type(exc).__name__}: {exc}"
        conn.send(StartFailed(reason))
        return
    ready = Ready(
        str(pipeline.device), pipeline.model, time.perf_counter() - started, pipeline.batch_size,
        safety.name if safety else "", pipeline.warm_sizes, pipeline.free_memory_bytes(), background.detail,
    )  # fmt: skip
    conn.send(ready)
    with ThreadPoolExecutor(PNG_THREADS, thread_name_prefix="png") as encoder:
        Server(conn, pipeline, settings, faults, encoder, safety, background).serve()


class Server:
    """The serving loop of one engine process: runs batches, reports steps, watches for interrupts.

    Each UNet batch's images are checked by ``safety`` (None: not checked) in
    one pass on the device, then encoded as PNGs on ``encoder``'s threads, so
    they encode while the next UNet batch of the same request runs. Whenever
    no message waits, the shapes left in ``background`` compile one at a time.

    Tests can drive it in-process with one end of a ``multiprocessing.Pipe`` and a loaded pipeline.
    """

    def __init__(
        self,
        conn: Connection,
        pipeline: Pipeline,
        settings: EngineSettings,
        faults: EngineFaults,
        encoder: ThreadPoolExecutor,
        safety: SafetyCheck | None = None,
        background: BackgroundCompile | None = None,
    ) -> None:
        self.conn = conn
        self.pipeline = pipeline
        self.settings = settings
        self.faults = faults
        self.encoder = encoder
        self.safety = safety
        self.background = background
        self.shutting_down = False
        self.stop_batch: int | None = None
        self.models: Models | None = None  # made at the first batch for a model other than the default

    def serve(self) -> None:
        """Serve until told to shut down or the client goes away."""
        try:
            while not self.shutting_down:
                if self.background is not None and not self.background.done and not self.conn.poll():
                    self.background.compile_next()
                    self.conn.send(Compiled(self.pipeline.warm_sizes, self.background.detail))
                    continue
                message = self.conn.recv()
                if isinstance(message, RunBatch):
                    self.conn.send(self.run_batch(message))
                elif isinstance(message, Shutdown):
                    return
                # An Interrupt for a batch that already finished needs nothing.
        except (EOFError, BrokenPipeError):
            log.info("the client is gone; exiting")

    def run_batch(self, batch: RunBatch) -> BatchDone | BatchStopped | BatchFailed:
        """Render every image of every job of ``batch``, in UNet batches of at most the pipeline's batch size."""
        import torch

        from engine.pipeline import ImageSpec

        params = batch.jobs[0].params
        failed = self.use_model(params.model)
        if failed is not None:
            return BatchFailed(batch.batch_id, failed)
        # Start images are decoded and checked first: a refused one fails its job alone, before any step.
        try:
            starts = start_images.prepare(batch.jobs, self.safety.check if self.safety is not None else None)
        except Exception:
            log.exception("checking the start images of batch %d failed", batch.batch_id)
            return BatchFailed(batch.batch_id, INTERNAL_ERROR)
        specs = [
            ImageSpec(job.prompt, job.negative_prompt, seed, starts.pictures.get(job.job_id))
            for job in batch.jobs if job.job_id not in starts.refused for seed in job.seeds
        ]  # fmt: skip
        # Each job's first image in ``specs`` (its preview's); a refused job has none.
        running = [0 if job.job_id in starts.refused else job.count for job in batch.jobs]
        firsts = [first if count else -1
                  for first, count in zip(itertools.accumulate(running[:-1], initial=0), running, strict=True)]
        images_done = 0
        oom_retries = 0

        held = not self.faults.hold_jobs.isdisjoint(job.job_id for job in batch.jobs)

        def on_step(chunk_size: int, step: int, latents: torch.Tensor) -> bool:
            # Progress over the whole batch, even when it runs as several UNet batches.
            overall = (images_done * params.denoise_steps + step * chunk_size) // len(specs)
            previews: tuple[bytes | None, ...] = ()
            if due(step, self.settings.preview_every_steps):
                previews = job_previews(latents, firsts, images_done, chunk_size)
            self.conn.send(Step(batch.batch_id, overall, params.denoise_steps, previews))
            if held and step == 1 and images_done == 0:
                self.conn.poll(None)  # the test's hold: wait for the client's next message
            return self.stop_requested(batch.batch_id)

        def run(chunk: Sequence[ImageSpec]) -> list[tuple[int, Future[bytes], SafetyVerdict | None]] | None:
            nonlocal images_done
            limit = self.faults.oom_above_images
            if limit is not None and len(chunk) > limit:
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected above {limit} images)")
            pictures = self.pipeline.generate(params, chunk, lambda step, latents: on_step(len(chunk), step, latents))
            if pictures is None:
                return None
            # Checked before encoding: no image leaves the engine without its verdict.
            verdicts = self.safety.check(pictures) if self.safety is not None else [None] * len(pictures)
            images_done += len(chunk)
            return [
                (spec.seed, self.encoder.submit(encode_png, picture, self.pipeline.png_text(params, spec)), verdict)
                for spec, picture, verdict in zip(chunk, pictures, verdicts, strict=True)
            ]

        def on_shrink(size: int) -> None:
            nonlocal oom_retries
            oom_retries += 1
            log.warning("out of GPU memory: retrying with %d images per UNet batch", size)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

        self.pipeline.reset_peak_memory()
        busy_before = self.pipeline.busy_seconds
        checking_before = self.checking_seconds
        try:
            encoded = run_in_chunks(run, specs, self.pipeline.batch_size, on_shrink)
            waiting = time.perf_counter()
            images = None if encoded is None else [
                GeneratedImage(seed, future.result(), verdict) for seed, future, verdict in encoded
            ]  # fmt: skip
            png_wait = time.perf_counter() - waiting  # the last UNet batch's PNGs: on the critical path
        except Exception as exc:
            if is_out_of_memory(exc):
                log.error("out of GPU memory even for one %dx%d image", params.width, params.height)
                return BatchFailed(
                    batch.batch_id,
                    f"Not enough GPU memory for a {params.width}x{params.height} image; try a smaller size.",
                )
            log.exception("batch %d failed", batch.batch_id)
            return BatchFailed(batch.batch_id, INTERNAL_ERROR)
        if images is None:
            return BatchStopped(batch.batch_id)
        per_job = []
        for job in batch.jobs:
            count = 0 if job.job_id in starts.refused else job.count
            per_job.append(tuple(images[:count]))
            images = images[count:]
        busy = self.pipeline.busy_seconds - busy_before
        checking = self.checking_seconds - checking_before
        return BatchDone(
            batch.batch_id, tuple(per_job), oom_retries, self.pipeline.peak_memory_bytes(), busy, checking,
            self.pipeline.free_memory_bytes(), tuple(starts.refused.get(job.job_id) for job in batch.jobs), png_wait,
        )  # fmt: skip

    def use_model(self, name: str) -> str | None:
        """Load model ``name`` (empty: the default) in place of the loaded one if it differs; a reason to show
        the batch's members if it cannot be loaded."""
        from engine.models import Models

        if self.models is None:
            if not name:
                return None
            self.models = Models(self.settings, self.pipeline)
        try:
            self.pipeline = self.models.get(name)
        except Exception:
            log.exception("could not load model %r", name or self.settings.model)
            return f"The model {name or 'default'} could not be loaded."
        return None

    @property
    def checking_seconds(self) -> float:
        """Time spent in the image safety check so far."""
        return self.safety.busy_seconds if self.safety is not None else 0.0

    def stop_requested(self, batch_id: int) -> bool:
        """Read what the client sent during the batch: should it stop?"""
        while self.stop_batch != batch_id and not self.shutting_down and self.conn.poll():
            try:
                message = self.conn.recv()
            except EOFError:
                message = Shutdown()
            if isinstance(message, Shutdown):
                self.shutting_down = True
            elif isinstance(message, Interrupt):
                self.stop_batch = message.batch_id
        return self.shutting_down or self.stop_batch == batch_id
