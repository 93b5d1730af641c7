"""A simulated engine: the :class:`~engine.types.EngineClient` interface without torch or a GPU.

It spends ``seconds_per_step`` for each image step at 512x512 (scaled by pixel
count; a UNet batch of several images costs the sum of its images), reports
progress every step, honours cancellation between steps, and draws a small
deterministic PNG per image from the prompt, parameters and seed (at most 64
pixels a side by default, to keep load tests and demos cheap; ``image_max_side=None``
draws the requested size). Tests can make a batch crash
(:meth:`SimulatedEngine.crash_next_batch`), hold one after its first step
(``hold_jobs``, as :class:`~engine.protocol.EngineFaults` holds the engine process) and force the
image safety check's scores (``safety_scores``; a job's start image is scored as seed
:data:`START_IMAGE`, and a flagged one fails that job alone). A job with a start image
(``init_image``) draws its picture over the start image, which shows through more the lower
the ``strength``; only ``denoise_steps`` steps take time, as in img2img. Time is spent through an injected ``sleep`` so a
virtual clock can run it instantly.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import io
from collections.abc import Awaitable, Callable, Sequence

from PIL import Image, ImageDraw, ImageOps

from engine.batching import plan_batches, refuse_invalid
from engine.config import EngineSettings
from engine.pnginfo import encode_png, format_parameters
from engine.preview import due, encode_preview
from engine.speed import SpeedMeter
from engine.start_images import REFUSED, UNREADABLE, decode
from engine.types import (
    EngineHealth,
    GeneratedImage,
    JobRequest,
    JobResult,
    Limits,
    Outcome,
    Progress,
    ProgressCallback,
    SafetyVerdict,
)

Sleep = Callable[[float], Awaitable[None]]
SafetyScores = Callable[[JobRequest, int], float]
"""The simulated image safety check: the score (0 to 1) of the image of a job and seed."""

REFERENCE_PIXELS = 512 * 512
MODEL_LABEL = "simulated"
CHECKER_LABEL = "simulated-safety-check"
START_IMAGE = -1
"""The seed ``safety_scores`` is asked about for a job's start image (seeds of images are never negative)."""


def draw_image(job: JobRequest, seed: int, max_side: int | None = 64) -> bytes:
    """A deterministic PNG for one image: a two-colour gradient and a disc, chosen by hashing the request.

    ``max_side`` shrinks the picture (keeping the aspect ratio) so load tests stay cheap; None draws it
    at the requested size. A start image shows through the drawing, the more so the lower ``strength`` is.
    The generation parameters are embedded as the real engine embeds them.
    """
    p = job.params
    digest = hashlib.sha256(
        f"{job.prompt}\0{job.negative_prompt}\0{p.width}x{p.height}\0{p.steps}\0{p.guidance}\0{p.sampler}\0{seed}"
        f"\0{p.strength}\0{p.model}\0{hashlib.sha256(job.init_image or b'').hexdigest()}".encode()
    ).digest()
    scale = 1.0 if max_side is None else min(1.0, max_side / max(p.width, p.height))
    width, height = max(1, round(p.width * scale)), max(1, round(p.height * scale))
    image = ImageOps.colorize(
        Image.linear_gradient("L").resize((width, height)).rotate(digest[0] % 4 * 90), tuple(digest[1:4]),
        tuple(digest[4:7]),
    )
    radius = max(1, min(width, height) * (digest[7] % 32 + 16) // 128)
    cx, cy = digest[8] * width // 256, digest[9] * height // 256
    ImageDraw.Draw(image).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=tuple(digest[10:13]))
    if job.init_image is not None:  # at strength 1 a quarter of the start image still shows
        start = decode(job.init_image, p.width, p.height).resize((width, height))
        image = Image.blend(start, image, 0.75 * p.strength)
    return encode_png(image, format_parameters(job.prompt, job.negative_prompt, p, [seed], MODEL_LABEL))


class SimulatedEngine:
    """Generates placeholder images on a schedule, like the real engine without the GPU."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        seconds_per_step: float = 0.02,
        max_batch_images: int = 8,
        image_max_side: int | None = 64,
        draw_in_thread: bool = False,
        sleep: Sleep = asyncio.sleep,
        safety_scores: SafetyScores | None = None,
        hold_jobs: frozenset[str] = frozenset(),
        preview_every_steps: int = 0,
    ) -> None:
        self.limits = limits or Limits()
        self.preview_every_steps = preview_every_steps
        self.seconds_per_step = seconds_per_step
        self.max_batch_images = max_batch_images
        self.image_max_side = image_max_side
        self.draw_in_thread = draw_in_thread
        self._sleep = sleep
        self.safety_scores = safety_scores
        """Scores every image as the engine's safety check would (a test's forced scores); None: no check."""
        self.hold_jobs = hold_jobs
        self._released = asyncio.Event()  # a held batch goes on at the next cancel or close
        self._gpu = asyncio.Lock()
        self._held: set[str] = set()
        self._cancelled: set[str] = set()
        self._crash_at: list[tuple[int, str]] = []
        self._ready = False
        self._busy = False
        self.restarts = 0
        self.busy_seconds = 0.0
        self.batches = 0
        self.images_made = 0
        self.speed = SpeedMeter()

    @classmethod
    def from_settings(
        cls, settings: EngineSettings, *, sleep: Sleep = asyncio.sleep, hold_jobs: frozenset[str] = frozenset()
    ) -> SimulatedEngine:
        """The engine the bot runs with ``engine.simulated``: small images, drawn in a worker thread so the
        bot's event loop stays free."""
        return cls(
            limits=settings.limits,
            seconds_per_step=settings.simulated_seconds_per_step,
            max_batch_images=settings.max_batch_images,
            draw_in_thread=True,
            sleep=sleep,
            hold_jobs=hold_jobs,
            preview_every_steps=settings.preview_every_steps,
        )

    async def start(self) -> None:
        self._ready = True

    async def close(self) -> None:
        self._ready = False
        self._released.set()

    def health(self) -> EngineHealth:
        return EngineHealth(
            ready=self._ready,
            busy=self._busy,
            restarts=self.restarts,
            device="simulated",
            model=MODEL_LABEL,
            safety_checker=CHECKER_LABEL if self.safety_scores is not None else "",
            images_per_second=self.speed.images_per_second,
            extra={
                "busy_seconds": self.busy_seconds,
                "max_batch_images": float(self.max_batch_images),
                "batches": float(self.batches),
                "images": float(self.images_made),
                "restarts_crashed": float(self.restarts),  # a crash is the only way the simulated engine restarts
                "restarts_hung": 0.0,
            },
        )

    def crash_next_batch(self, at_step: int = 1, error: str = "the engine crashed") -> None:
        """Make the next UNet batch to reach ``at_step`` crash: every unfinished job of that call fails, retryable."""
        self._crash_at.append((at_step, error))

    async def cancel(self, job_id: str) -> bool:
        if job_id not in self._held:
            return False
        self._cancelled.add(job_id)
        self._released.set()
        return True

    async def generate(self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None = None) -> list[JobResult]:
        ids = [job.job_id for job in jobs]
        self._held.update(ids)
        try:
            async with self._gpu:
                results = await self._generate(jobs, on_progress)
        finally:
            self._held.difference_update(ids)
            self._cancelled.difference_update(ids)
        return [results[job.job_id] for job in jobs]

    async def _generate(self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None) -> dict[str, JobResult]:
        valid, results = refuse_invalid(jobs, self.limits)
        if any(job.init_image is not None for job in valid):  # decoding is not for the event loop
            for job_id, reason in (await asyncio.to_thread(self._refused_starts, valid)).items():
                results[job_id] = JobResult(job_id, Outcome.FAILED, error=reason)
            valid = [job for job in valid if job.job_id not in results]
        self._busy = True
        try:
            for group in plan_batches(valid, self.max_batch_images):
                crash = await self._run_batch(group, results, on_progress)
                if crash is not None:
                    for job in valid:
                        if job.job_id not in results:
                            results[job.job_id] = JobResult(job.job_id, Outcome.FAILED, error=crash, retryable=True)
                    break
        finally:
            self._busy = False
        return results

    async def _run_batch(
        self, group: list[JobRequest], results: dict[str, JobResult], on_progress: ProgressCallback | None
    ) -> str | None:
        """Run one UNet batch step by step; returns the crash message if it crashed."""
        self.batches += 1
        steps = group[0].params.denoise_steps
        live = list(group)
        spent = 0.0
        for step in range(1, steps + 1):
            for job in [job for job in live if job.job_id in self._cancelled]:
                live.remove(job)
                results[job.job_id] = JobResult(job.job_id, Outcome.CANCELLED, error="cancelled", seconds=spent)
            if not live:
                return None
            if not self._ready:
                return "the engine was stopped"
            if self._crash_at and self._crash_at[0][0] <= step:
                self.restarts += 1
                return self._crash_at.pop(0)[1]
            pixels = sum(job.count * job.params.width * job.params.height for job in live)
            duration = self.seconds_per_step * pixels / REFERENCE_PIXELS
            await self._sleep(duration)
            spent += duration
            self.busy_seconds += duration
            if on_progress is not None:
                for job in live:
                    preview = self._preview(job, step / steps) if due(step, self.preview_every_steps) else None
                    reported = on_progress(Progress(job.job_id, step, steps, preview))
                    if inspect.isawaitable(reported):
                        await reported
            if step == 1 and any(job.job_id in self.hold_jobs for job in live):
                await self._released.wait()
        draw = functools.partial(self._draw, live)
        images = await asyncio.to_thread(draw) if self.draw_in_thread else draw()
        self.speed.record(sum(job.count for job in live), spent)
        for job in live:
            self.images_made += len(images[job.job_id])
            results[job.job_id] = JobResult(job.job_id, Outcome.DONE, images=images[job.job_id], seconds=spent)
        return None

    def _draw(self, jobs: list[JobRequest]) -> dict[str, tuple[GeneratedImage, ...]]:
        return {
            job.job_id: tuple(
                GeneratedImage(seed, draw_image(job, seed, self.image_max_side), self._verdict(job, seed))
                for seed in job.seeds
            )
            for job in jobs
        }

    @staticmethod
    def _preview(job: JobRequest, done: float) -> bytes:
        """A preview as the real engine sends (latent-sized, a JPEG): the job's first image, ``done`` out of grey."""
        side = max(job.params.width, job.params.height) // 8
        picture = Image.open(io.BytesIO(draw_image(job, job.seeds[0], side))).convert("RGB")
        return encode_preview(Image.blend(Image.new("RGB", picture.size, "gray"), picture, done))

    def _verdict(self, job: JobRequest, seed: int) -> SafetyVerdict | None:
        if self.safety_scores is None:
            return None
        return SafetyVerdict.from_score(self.safety_scores(job, seed), CHECKER_LABEL)

    def _refused_starts(self, jobs: Sequence[JobRequest]) -> dict[str, str]:
        """The jobs whose start image cannot be read or is flagged, with the reason, as the engine says it."""
        refused = {}
        for job in jobs:
            if job.init_image is None:
                continue
            try:
                decode(job.init_image, job.params.width, job.params.height)
            except ValueError:
                refused[job.job_id] = UNREADABLE
                continue
            verdict = self._verdict(job, START_IMAGE)
            if verdict is not None and verdict.label == "flagged":
                refused[job.job_id] = REFUSED
        return refused
