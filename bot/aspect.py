"""Aspect ratios: ``/dream aspect:`` and a member's default, turned into a width and height.

A ratio is drawn at about the model's native area (512×512), or the member's
tier pixel limit where that is smaller, with sides that are multiples of 64
(else of 8, for small limits), within the engine's sizes, and close to the
ratio asked for; a ratio that cannot be met is refused naming ``aspect``.
"""

from __future__ import annotations

import math

from engine.types import Limits, RequestError

ASPECTS: dict[str, tuple[int, int]] = {"1:1": (1, 1), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9), "9:16": (9, 16)}
"""The ratios offered, width to height."""
NATIVE_AREA = 512 * 512
"""Pixels of the size Stable Diffusion 1.x was trained at."""
STEPS = (64, 8)
"""Side multiples tried, coarsest first (the UNet works on 8-pixel latents; 64 keeps every level whole)."""
RATIO_TOLERANCE = 0.1
"""How far (relatively) a size's ratio may be from the one asked for."""


def aspect_size(aspect: str, limits: Limits, max_pixels: int) -> tuple[int, int]:
    """The width and height for ``aspect`` within the engine's ``limits`` and ``max_pixels`` per image."""
    if aspect not in ASPECTS:
        raise RequestError("aspect", f"must be one of {', '.join(ASPECTS)}, got {aspect!r}")
    across, down = ASPECTS[aspect]
    area = min(NATIVE_AREA, max_pixels)
    scale = math.sqrt(area / (across * down))
    # Shrink to the engine's longest sides first, keeping the ratio.
    scale = min(scale, limits.max_width / across, limits.max_height / down)
    for step in STEPS:
        for rounding in (round, math.floor):  # nearest first; down when nearest is too many pixels
            width = max(step, rounding(across * scale / step) * step)
            height = max(step, rounding(down * scale / step) * step)
            if _fits(width, height, limits, max_pixels) and _close(width / height, across / down):
                return width, height
    raise RequestError(
        "aspect",
        f"{aspect} cannot be made within the limits here (sides {limits.min_size}-{limits.max_width}×"
        f"{limits.max_height} px, at most {max_pixels:,} pixels per image for your tier); choose another ratio "
        "or give width and height",
    )


def _fits(width: int, height: int, limits: Limits, max_pixels: int) -> bool:
    return (limits.min_size <= width <= limits.max_width and limits.min_size <= height <= limits.max_height
            and width * height <= max_pixels)  # fmt: skip


def _close(ratio: float, wanted: float) -> bool:
    return abs(ratio / wanted - 1) <= RATIO_TOLERANCE
