"""img2img and large images: the start-image pipeline that shares the loaded weights, and VAE tiling by size.

Runs inside the engine process only (it imports torch). A batch of jobs with
start images runs through diffusers' image-to-image pipeline made from the
loaded text-to-image one with ``from_pipe`` (same UNet, VAE, text encoders and
sampler; no extra memory). Each image keeps its own ``torch.Generator``: the
image-to-image pipelines encode each start image with its own generator, so an
image is the same alone or in a batch.

An upscale is img2img at twice the size from a start image the bot enlarged;
images over ``engine.vae_tiling_above`` pixels are encoded and decoded tile by
tile so their VAE passes fit in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
from diffusers.models.autoencoders.vae import AutoencoderMixin
from PIL import Image

from engine.types import GenerationParams


def effective_strength(params: GenerationParams) -> float:
    """The strength to hand diffusers so exactly ``params.denoise_steps`` steps run.

    diffusers runs ``int(steps * strength)`` steps and refuses zero; half a step
    over the wanted count keeps float rounding (``49 * (1 / 49) < 1``) from losing one.
    """
    return min(1.0, (params.denoise_steps + 0.5) / params.steps)


class StartImagePipeline:
    """The image-to-image twin of one loaded text-to-image pipeline, made on first use."""

    def __init__(self, text_to_image: DiffusionPipeline) -> None:
        self.text_to_image = text_to_image
        self._pipe: DiffusionPipeline | None = None

    def call(
        self, params: GenerationParams, starts: Sequence[Image.Image | None]
    ) -> tuple[DiffusionPipeline, dict[str, Any]]:
        """The pipeline to call for a batch with these start images, and its image-to-image arguments.

        A start image missing (an image that pads a compiled batch) is a black one.
        """
        if self._pipe is None:
            self._pipe = AutoPipelineForImage2Image.from_pipe(self.text_to_image)
            self._pipe.set_progress_bar_config(disable=True)
        self._pipe.scheduler = self.text_to_image.scheduler  # the sampler this batch was set to
        blank = Image.new("RGB", (params.width, params.height))
        images = [start if start is not None else blank for start in starts]
        return self._pipe, {"image": images, "strength": effective_strength(params)}


def set_tiling(vae: AutoencoderMixin, params: GenerationParams, above_pixels: int) -> None:
    """Tile the VAE's passes for images of more than ``above_pixels`` pixels; run smaller ones whole."""
    if params.width * params.height > above_pixels:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
