"""Stable Diffusion through diffusers: load a model once, switch samplers, render batches of images.

Runs inside the engine process only (it imports torch). One call renders a
batch of images that share :class:`GenerationParams`; each image has its own
prompt, negative prompt and seed, and its own ``torch.Generator``, so an image
comes out the same whether it was made alone or in a batch.

The speed and memory options of :class:`EngineSettings` are applied at load
(:mod:`engine.optimize`). A compiled pipeline runs each shape it warmed up
compiled, padding a batch with throw-away images up to the next compiled batch
size; any other shape runs uncompiled rather than compiling mid-service.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import diffusers
import torch
import transformers
from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image

from engine.config import EngineSettings
from engine.img2img import StartImagePipeline, set_tiling
from engine.models import load_pipe, needs_vae_upcast
from engine.optimize import check_device, compile_networks, place, resolve_dtype
from engine.pnginfo import encode_png, format_parameters, model_label
from engine.samplers import SCHEDULERS
from engine.types import GenerationParams

log = logging.getLogger(__name__)

StepCallback = Callable[[int, torch.Tensor], bool]
"""Called after each denoising step with the number of steps done and the latents so far (one per image of the
batch run, padding included); returning True stops the batch."""

WARM_UP_STEPS = 2
"""Denoising steps of each warm-up run."""


@dataclass(frozen=True)
class ImageSpec:
    """One image of a batch."""

    prompt: str
    negative_prompt: str
    seed: int
    start: Image.Image | None = None
    """The start image (img2img); None: from noise."""


PADDING = ImageSpec("", "", 0)
"""A throw-away image that fills a batch up to a compiled batch size."""

Shape = tuple[int, int, bool]
"""(width, height, classifier-free guidance on): what fixes a compiled graph's shapes, with the batch size."""


def resolve_device(setting: str) -> torch.device:
    """The device for ``engine.device``: ``auto`` is CUDA when there is one, else the CPU."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(setting)


class Pipeline:
    """A loaded Stable Diffusion (1.x, 2.x or XL) pipeline that renders batches of :class:`ImageSpec`.

    A batch with start images runs through the image-to-image twin (:mod:`engine.img2img`); images over
    ``tile_above_pixels`` pixels go through the VAE tile by tile.
    """

    def __init__(
        self,
        pipe: DiffusionPipeline,
        device: torch.device,
        model: str,
        *,
        batch_size: int = 8,
        compiled: bool = False,
        tile_above_pixels: int = 589_824,
    ) -> None:
        self.pipe = pipe
        self.start_images = StartImagePipeline(pipe)
        self.tile_above_pixels = tile_above_pixels
        self.upcast_vae = needs_vae_upcast(pipe)
        self.device = device
        self.model = model
        """The model's name as written into the images' parameters."""
        self.batch_size = batch_size
        """Most images per UNet batch (``batch_size: auto`` settles it in :meth:`warm_up`)."""
        self.compiled = compiled
        self.busy_seconds = 0.0
        """Time spent generating so far: GPU time between each batch's first and last kernel on CUDA."""
        self._base_scheduler_config = pipe.scheduler.config
        self._schedulers: dict[str, SchedulerMixin] = {}
        self._warm: set[tuple[Shape, int]] = set()
        self._compiled_batches: dict[Shape, list[int]] = {}

    @classmethod
    def load(
        cls, settings: EngineSettings, *, compile_backend: str | Callable[..., Any] = "inductor",
        key: str = "engine.model",
    ) -> Pipeline:
        """Load ``settings.model`` (a local folder or a Hugging Face id) with the engine's options applied.

        The pipeline class is the one the model's ``model_index.json`` names (:func:`engine.models.load_pipe`;
        ``key`` is the config key an unsupported model is reported under).

        Attention runs through PyTorch's scaled-dot-product attention (diffusers'
        default ``AttnProcessor2_0``) unless ``low_memory`` slices it; the safety
        checker is loaded apart (:mod:`engine.safety`). ``compile_backend`` is for tests (``eager`` captures and
        guards the graphs as inductor would, without generating kernels).
        """
        if not settings.model:
            raise ValueError("no model configured (engine.model)")
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        device = resolve_device(settings.device)
        check_device(settings, device)
        dtype = resolve_dtype(settings.dtype, device)
        pipe = load_pipe(settings.model, settings, dtype, key)
        place(pipe, settings, device)
        pipe.set_progress_bar_config(disable=True)
        if settings.compile:
            compile_networks(pipe, settings, compile_backend)
        log.info("loaded %s on %s (%s)", settings.model, device, dtype)
        batch_size = settings.batch_size if isinstance(settings.batch_size, int) else settings.max_batch_images
        tile_above = 0 if settings.vae_tiling else settings.vae_tiling_above
        return cls(
            pipe, device, model_label(settings.model), batch_size=batch_size, compiled=settings.compile,
            tile_above_pixels=tile_above,
        )  # fmt: skip

    def set_sampler(self, name: str) -> None:
        """Use sampler ``name`` from now on; schedulers are built once and reused, so switching is cheap."""
        scheduler = self._schedulers.get(name)
        if scheduler is None:
            scheduler_class, overrides = SCHEDULERS[name]
            scheduler = self._schedulers[name] = scheduler_class.from_config(self._base_scheduler_config, **overrides)
        self.pipe.scheduler = scheduler

    def generate(
        self, params: GenerationParams, images: Sequence[ImageSpec], on_step: StepCallback | None = None
    ) -> list[Image.Image] | None:
        """Render ``images`` in one UNet batch; None if ``on_step`` stopped it."""
        self.set_sampler(params.sampler)
        batch, uncompiled = self._fit(params, images)
        # One generator per image, on the CPU: an image's noise depends on its seed alone,
        # not on its place in the batch or on the GPU model.
        generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in batch]
        set_tiling(self.pipe.vae, params, self.tile_above_pixels)
        if images[0].start is None:
            pipe, options = self.pipe, {"width": params.width, "height": params.height}
        else:
            pipe, options = self.start_images.call(params, [spec.start for spec in batch])

        def step_end(pipe: DiffusionPipeline, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None and on_step(index + 1, tensors["latents"]):
                pipe._interrupt = True  # diffusers skips the remaining steps
            return tensors

        # A shape compiled at warm-up runs compiled; any other runs eagerly rather than compiling mid-service.
        with torch.compiler.set_stance("force_eager") if uncompiled else contextlib.nullcontext(), self._busy():
            latents = pipe(
                prompt=[spec.prompt for spec in batch],
                negative_prompt=[spec.negative_prompt for spec in batch],
                num_inference_steps=params.steps,
                guidance_scale=params.guidance,
                generator=generators,
                output_type="latent",
                callback_on_step_end=step_end,
                **options,
            ).images
            if pipe.interrupt:
                return None
            return self.decode(latents, len(images))

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, count: int | None = None) -> list[Image.Image]:
        """Latents to images through the VAE, the first ``count`` only (the rest pad a compiled batch).

        Skipped for a stopped batch, hence outside the pipeline call.
        """
        vae = self.pipe.vae
        if self.upcast_vae:
            vae.to(torch.float32)  # SDXL's VAE overflows in fp16 (its img2img pipeline casts it back after encoding)
        pixels = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        return self.pipe.image_processor.postprocess(pixels[:count], output_type="pil")

    def png_text(self, params: GenerationParams, spec: ImageSpec) -> str:
        """The parameters text embedded in ``spec``'s PNG."""
        return format_parameters(spec.prompt, spec.negative_prompt, params, [spec.seed], self.model)

    def render(
        self, params: GenerationParams, images: Sequence[ImageSpec], on_step: StepCallback | None = None
    ) -> list[bytes] | None:
        """Like :meth:`generate`, but each image as PNG bytes with its parameters embedded."""
        pictures = self.generate(params, images, on_step)
        if pictures is None:
            return None
        return [
            encode_png(picture, self.png_text(params, spec)) for spec, picture in zip(images, pictures, strict=True)
        ]

    def warm_shape(self, size: tuple[int, int], batch: int, sampler: str) -> None:
        """Render one batch of ``batch`` images at ``size`` (compiling it, if compiled), unless done before.

        A compiled shape runs compiled from then on; one whose compile failed stays uncompiled.
        """
        shape = (*size, True)  # warm-up runs with guidance, as members' jobs do
        if (shape, batch) in self._warm:
            return
        if self.compiled:
            bisect.insort(self._compiled_batches.setdefault(shape, []), batch)
        started = time.perf_counter()
        params = GenerationParams(width=size[0], height=size[1], steps=WARM_UP_STEPS, sampler=sampler)
        try:
            self.generate(params, [ImageSpec("warm-up", "", seed) for seed in range(batch)])
        except BaseException:
            if self.compiled:
                self._compiled_batches[shape].remove(batch)
            raise
        self._warm.add((shape, batch))
        log.info("warmed up %dx%d, %d images per batch, in %.1f s", *size, batch, time.perf_counter() - started)

    def is_warm(self, size: tuple[int, int], batch: int) -> bool:
        """Whether a batch of ``batch`` images at ``size`` has run (compiled, if compiled) through :meth:`warm_shape`."""
        return ((*size, True), batch) in self._warm

    def _fit(self, params: GenerationParams, images: Sequence[ImageSpec]) -> tuple[list[ImageSpec], bool]:
        """The batch to run for ``images``, and whether it must run uncompiled.

        A compiled shape is padded up to the next compiled batch size; a compiled
        pipeline runs a shape not compiled at warm-up uncompiled.
        """
        compiled = self._compiled_batches.get((params.width, params.height, params.guidance > 1), [])
        size = next((batch for batch in compiled if batch >= len(images)), None)
        if size is None:
            return list(images), self.compiled
        return [*images, *[PADDING] * (size - len(images))], False

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Add the time the block keeps the device busy to :attr:`busy_seconds`."""
        if self.device.type != "cuda":
            started = time.perf_counter()
            try:
                yield
            finally:
                self.busy_seconds += time.perf_counter() - started
            return
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        try:
            yield
        finally:
            end.record()
            end.synchronize()
            self.busy_seconds += start.elapsed_time(end) / 1000

    @property
    def warm_sizes(self) -> tuple[tuple[int, int], ...]:
        """``(width, height)`` of every shape warmed up so far."""
        return tuple(sorted({(width, height) for (width, height, _), _ in self._warm}))

    def free_memory_bytes(self) -> int | None:
        """Free memory on the GPU now (CUDA); None on other devices."""
        return torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else None

    def reset_peak_memory(self) -> None:
        """Start measuring peak GPU memory afresh (the CPU's peak resident memory cannot be reset)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_bytes(self) -> int:
        """Peak GPU memory torch allocated since the last reset (CUDA), or the process's peak resident memory (CPU)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
