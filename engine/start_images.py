"""Start images of img2img jobs: decoded and checked in the engine, before any step runs.

Pillow only, no torch: the engine process and the simulated engine both use it.
A job whose start image cannot be read, or that the image safety check flags,
fails on its own (not retryable); the other jobs of its batch still run.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from engine.types import JobRequest, SafetyVerdict

REFUSED = "Your start image was refused by the image safety check."
UNREADABLE = "Your start image could not be read as a PNG of the requested size."

Check = Callable[[Sequence[Image.Image]], list[SafetyVerdict]]
"""The image safety check: one verdict per image, in order."""


def decode(png: bytes, width: int, height: int) -> Image.Image:
    """The RGB picture of a start image; ValueError unless it is a ``width`` x ``height`` image."""
    try:
        with Image.open(io.BytesIO(png)) as opened:
            picture = opened.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not an image: {exc}") from exc
    if picture.size != (width, height):
        raise ValueError(f"{picture.size[0]}x{picture.size[1]}, not {width}x{height}")
    return picture


@dataclass
class StartImages:
    """The decoded start images of a batch's jobs, and the jobs refused, with a reason safe to show a member."""

    pictures: dict[str, Image.Image] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def prepare(jobs: Sequence[JobRequest], check: Check | None) -> StartImages:
    """Decode each job's start image and check them all in one pass of ``check`` (None: not checked)."""
    found = StartImages()
    for job in jobs:
        if job.init_image is None:
            continue
        try:
            found.pictures[job.job_id] = decode(job.init_image, job.params.width, job.params.height)
        except ValueError:
            found.refused[job.job_id] = UNREADABLE
    if check is not None and found.pictures:
        for job_id, verdict in zip(list(found.pictures), check(list(found.pictures.values())), strict=True):
            if verdict.label == "flagged":
                del found.pictures[job_id]
                found.refused[job_id] = REFUSED
    return found
