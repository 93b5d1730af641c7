"""The ``controls:`` section: what the result controls (vary, upscale, remix) and ``/dream``'s own image use.

The strengths are every server's defaults (its admins change them with
``/admin settings``); the start-image limits are the operator's.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_START_IMAGE_BYTES = 100 * 2**20
"""The most a start image's file may ever be configured to weigh (Discord's largest upload)."""


class ControlSettings(BaseModel):
    """How far each control moves from its image, and which start images ``/dream`` accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vary_subtle_strength: float = Field(default=0.35, gt=0, le=1)
    """img2img strength of *Vary (subtle)*: low keeps the picture, changing details."""
    vary_strong_strength: float = Field(default=0.7, gt=0, le=1)
    """img2img strength of *Vary (strong)* and of *Remix*: keeps the layout and colours, redraws the rest."""
    upscale_strength: float = Field(default=0.3, gt=0, le=1)
    """img2img strength of *Upscale 2×*: the enlarged image is refined, not redrawn."""
    image_strength: float = Field(default=0.7, gt=0, le=1)
    """``/dream``'s ``strength`` when the member attaches an image and gives none."""
    max_image_bytes: int = Field(default=10 * 2**20, ge=1024, le=MAX_START_IMAGE_BYTES)
    """The largest start image file ``/dream`` downloads; a bigger one is refused before it is fetched."""
    max_image_pixels: int = Field(default=4096 * 4096, ge=64 * 64, le=16384 * 16384)
    """The most pixels a start image may have, read from its header before it is decoded (a decompression
    bomb is refused, never decoded)."""
