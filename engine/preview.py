"""Live previews: a small picture of an image while it is still being denoised, without the VAE.

Stable Diffusion 1.x's four latent channels map almost linearly to colour, so a
fixed 4x3 matrix turns the latents of a running batch into a rough RGB picture
at the latent's size (1/8 of the image a side) for a fraction of a millisecond:
no extra weights, no decoder. Previews are JPEGs of a few kilobytes, sent with
the step progress every ``engine.preview_every_steps`` steps.

No torch at import: the simulated engine uses :func:`encode_preview` too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    import torch

LATENT_RGB: tuple[tuple[float, float, float], ...] = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
"""Each SD 1.x latent channel's contribution to red, green and blue (the widely used linear approximation of the
VAE decoder, applied to the latents as the denoising loop holds them); the sum lands in about -1..1."""

JPEG_QUALITY = 80
"""Enough for a thumbnail: a 64x64 preview (a 512x512 image's) is about 2 KB."""


def due(step: int, every: int) -> bool:
    """Whether step ``step`` (1-based) sends a preview when one is made every ``every`` steps (0: never)."""
    return every > 0 and step % every == 0


def latent_pixels(latents: torch.Tensor) -> torch.Tensor:
    """``(N, 4, h, w)`` latents as ``(N, h, w, 3)`` uint8 RGB on the CPU, through :data:`LATENT_RGB`."""
    import torch

    factors = torch.tensor(LATENT_RGB, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("nchw,cr->nhwr", latents.float(), factors)
    return ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).cpu()


def encode_preview(picture: Image.Image) -> bytes:
    """``picture`` as a small JPEG."""
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def latent_previews(latents: torch.Tensor, indices: list[int]) -> dict[int, bytes]:
    """JPEG previews of the images at ``indices`` of a batch's ``latents``, by index."""
    if not indices:
        return {}
    pixels = latent_pixels(latents[indices]).numpy()
    return {index: encode_preview(Image.fromarray(rgb)) for index, rgb in zip(indices, pixels, strict=True)}


def job_previews(latents: torch.Tensor, firsts: Sequence[int], start: int, count: int) -> tuple[bytes | None, ...]:
    """A preview for each job whose first image (``firsts``: its index in the whole batch) is among the ``count``
    images of the UNet batch that starts at image ``start``; None for the other jobs, whose first image runs in
    another UNet batch. ``latents`` may hold more than ``count`` images: padding, which is never shown."""
    previews = latent_previews(latents, [first - start for first in firsts if start <= first < start + count])
    return tuple(previews.get(first - start) for first in firsts)
