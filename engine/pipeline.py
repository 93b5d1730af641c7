"""Stable Diffusion through diffusers: load a model once, switch samplers, render batches of images.

Runs inside the engine process only (it imports torch). One call renders a
batch of images that share :class:`GenerationParams`; each image has its own
prompt, negative prompt and seed, and its own ``torch.Generator``, so an image
comes out the same whether it was made alone or in a batch.
"""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import diffusers
import torch
import transformers
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from PIL import Image

from engine.config import EngineSettings
from engine.pnginfo import encode_png, format_parameters, model_label
from engine.types import GenerationParams

log = logging.getLogger(__name__)

SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "dpmpp_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpmpp_2m_karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),
}
"""Each sampler name of ``engine.types.SAMPLERS``: the diffusers scheduler and its overrides of the model's config."""

StepCallback = Callable[[int], bool]
"""Called after each denoising step with the number of steps done; returning True stops the batch."""


@dataclass(frozen=True)
class ImageSpec:
    """One image of a batch."""

    prompt: str
    negative_prompt: str
    seed: int


def resolve_device(setting: str) -> torch.device:
    """The device for ``engine.device``: ``auto`` is CUDA when there is one, else the CPU."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(setting)


class Pipeline:
    """A loaded Stable Diffusion pipeline that renders batches of :class:`ImageSpec`."""

    def __init__(self, pipe: StableDiffusionPipeline, device: torch.device, model: str) -> None:
        self.pipe = pipe
        self.device = device
        self.model = model
        """The model's name as written into the images' parameters."""
        self._base_scheduler_config = pipe.scheduler.config
        self._schedulers: dict[str, SchedulerMixin] = {}

    @classmethod
    def load(cls, settings: EngineSettings) -> Pipeline:
        """Load ``settings.model`` (a local folder or a Hugging Face id): fp16 on CUDA, fp32 on the CPU.

        Attention runs through PyTorch's scaled-dot-product attention (diffusers'
        default ``AttnProcessor2_0``); there is no safety checker.
        """
        if not settings.model:
            raise ValueError("no model configured (engine.model)")
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        device = resolve_device(settings.device)
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        pipe = StableDiffusionPipeline.from_pretrained(
            settings.model,
            torch_dtype=dtype,
            local_files_only=settings.local_files_only,
            cache_dir=settings.cache_dir,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        log.info("loaded %s on %s (%s)", settings.model, device, dtype)
        return cls(pipe, device, model_label(settings.model))

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
        # One generator per image, on the CPU: an image's noise depends on its seed alone,
        # not on its place in the batch or on the GPU model.
        generators = [torch.Generator("cpu").manual_seed(spec.seed) for spec in images]

        def step_end(
            pipe: StableDiffusionPipeline, index: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            if on_step is not None and on_step(index + 1):
                pipe._interrupt = True  # diffusers skips the remaining steps
            return tensors

        latents = self.pipe(
            prompt=[spec.prompt for spec in images],
            negative_prompt=[spec.negative_prompt for spec in images],
            width=params.width,
            height=params.height,
            num_inference_steps=params.steps,
            guidance_scale=params.guidance,
            generator=generators,
            output_type="latent",
            callback_on_step_end=step_end,
        ).images
        if self.pipe.interrupt:
            return None
        return self.decode(latents)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Latents to images through the VAE (skipped for a stopped batch, hence outside the pipeline call)."""
        vae = self.pipe.vae
        pixels = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
        return self.pipe.image_processor.postprocess(pixels, output_type="pil")

    def render(
        self, params: GenerationParams, images: Sequence[ImageSpec], on_step: StepCallback | None = None
    ) -> list[bytes] | None:
        """Like :meth:`generate`, but each image as PNG bytes with its parameters embedded."""
        pictures = self.generate(params, images, on_step)
        if pictures is None:
            return None
        return [
            encode_png(picture, format_parameters(spec.prompt, spec.negative_prompt, params, [spec.seed], self.model))
            for spec, picture in zip(images, pictures, strict=True)
        ]

    def warm_up(self, params: GenerationParams) -> None:
        """Run one small image through every network so the first member's job does not pay for it."""
        self.generate(params, [ImageSpec("warm-up", "", 0)])

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
