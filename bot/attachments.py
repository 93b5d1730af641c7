"""Start images for img2img: a member's attachment checked, decoded and fitted to a size the engine makes, and a
stored image brought to its job's size (enlarged, for *Upscale 2×*).

A file is refused before it is fetched when it declares too many bytes, and
before it is decoded when its header declares too many pixels (Pillow reads
only the header on open): a decompression bomb is never decompressed. The
decoding and re-encoding are CPU work, done in a thread.
"""

from __future__ import annotations

import asyncio
import io
import math
import warnings
from dataclasses import dataclass

import discord
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.control_settings import ControlSettings
from bot.refusal import Refusal
from engine.types import Limits

FORMATS = ("PNG", "JPEG", "WEBP")
"""The image formats a start image may be in (only their decoders are tried)."""


@dataclass(frozen=True)
class Bounds:
    """The sizes a start image may be fitted to: the engine's limits and the member's pixels per image."""

    min_size: int
    max_width: int
    max_height: int
    max_pixels: int

    @classmethod
    def of(cls, limits: Limits, tier_pixels: int) -> Bounds:
        return cls(limits.min_size, limits.max_width, limits.max_height,
                   min(tier_pixels, limits.max_width * limits.max_height))  # fmt: skip


@dataclass(frozen=True)
class StartImage:
    """A start image as the engine takes it: PNG bytes of exactly ``width`` x ``height``."""

    png: bytes
    width: int
    height: int


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def check_size(name: str, size: int, settings: ControlSettings) -> None:
    """Refuse a file of ``size`` bytes over the limit (checked on the declared size, before anything is fetched)."""
    if size > settings.max_image_bytes:
        raise Refusal(f"**image**: `{name}` is {_megabytes(size)}; start images may be at most "
                      f"{_megabytes(settings.max_image_bytes)}. Attach a smaller PNG or JPEG.")  # fmt: skip


async def read_start_image(attachment: discord.Attachment, settings: ControlSettings, bounds: Bounds,
                           size: tuple[int, int] | None) -> StartImage:  # fmt: skip
    """Download the attachment and fit it (in a thread) to ``size``, or else to the nearest allowed size of its
    own shape; refuse what is too big, damaged or not an image, naming the file."""
    check_size(attachment.filename, attachment.size, settings)
    try:
        data = await attachment.read()
    except discord.HTTPException as exc:
        raise Refusal(f"**image**: `{attachment.filename}` could not be downloaded ({exc.status}); "
                      "try again.") from None
    check_size(attachment.filename, len(data), settings)  # in case the declared size was wrong
    return await asyncio.to_thread(fit_start_image, data, attachment.filename, settings.max_image_pixels, bounds, size)


def fit_start_image(data: bytes, name: str, max_pixels: int, bounds: Bounds,
                    size: tuple[int, int] | None = None) -> StartImage:  # fmt: skip
    """Decode ``data`` (PNG, JPEG or WebP), turn it upright, flatten it to RGB, and scale and centre-crop it to
    ``size`` or to the nearest allowed size of its own shape. CPU-bound."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                width, height = opened.size  # from the header: nothing is decoded yet
                if width * height > max_pixels:
                    raise Refusal(f"**image**: `{name}` is {width}×{height} pixels; start images may have at most "
                                  f"{max_pixels:,} pixels ({math.isqrt(max_pixels)}×{math.isqrt(max_pixels)}).")
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refusal(f"**image**: `{name}` declares more pixels than any start image may have.") from None
    except UnidentifiedImageError:
        raise Refusal(f"**image**: `{name}` is not a PNG, JPEG or WebP image.") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise Refusal(f"**image**: `{name}` is damaged or cut short and cannot be read; "
                      "attach the image again.") from None  # fmt: skip
    if image.mode in ("RGBA", "LA", "P", "PA"):  # transparency becomes white, not black
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    target = size or fitted_size(image.width, image.height, bounds)
    fitted = ImageOps.fit(image.convert("RGB"), target, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, format="PNG")
    return StartImage(out.getvalue(), *target)


def fitted_size(width: int, height: int, bounds: Bounds) -> tuple[int, int]:
    """The allowed size nearest to ``width`` x ``height`` of its shape: shrunk to fit the bounds, a small image
    enlarged to the smallest side, each side a multiple of 8 (the shape may then be cropped a little)."""
    scale = min(1.0, math.sqrt(bounds.max_pixels / (width * height)),
                bounds.max_width / width, bounds.max_height / height)  # fmt: skip
    scale = max(scale, bounds.min_size / min(width, height))

    def side(length: float, top: int) -> int:
        return max(bounds.min_size, min(top, int(length) // 8 * 8))

    return side(width * scale, bounds.max_width), side(height * scale, bounds.max_height)


def resized(png: bytes, width: int, height: int) -> bytes:
    """``png`` at ``width`` x ``height`` (enlarged with Lanczos for *Upscale 2×*; as it is when it is that size
    already), as PNG. CPU-bound."""
    with Image.open(io.BytesIO(png)) as opened:
        if opened.size == (width, height):
            return png
        image = opened.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
