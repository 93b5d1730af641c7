"""Start images: fitted to the sizes the engine makes and the member's tier allows, whatever their shape."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.attachments import Bounds, fit_start_image, fitted_size, resized
from bot.refusal import Refusal

BOUNDS = Bounds(min_size=64, max_width=1024, max_height=1024, max_pixels=768 * 768)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(("size", "fitted"), [
    ((512, 512), (512, 512)),          # allowed already
    ((300, 200), (296, 200)),          # sides down to multiples of 8
    ((4000, 3000), (880, 664)),        # shrunk to the tier's pixels, shape kept
    ((20, 10), (128, 64)),             # enlarged to the smallest side
    ((64, 5000), (64, 1024)),          # a strip: the long side cropped to the engine's limit
])  # fmt: skip
def test_fitted_size_keeps_the_shape_within_every_bound(size: tuple[int, int], fitted: tuple[int, int]) -> None:
    width, height = fitted_size(*size, BOUNDS)
    assert (width, height) == fitted
    assert width % 8 == 0 and height % 8 == 0 and width * height <= BOUNDS.max_pixels


def test_transparency_becomes_white_and_the_result_is_rgb_png_of_the_size() -> None:
    clear = Image.new("RGBA", (128, 64), (255, 0, 0, 0))
    start = fit_start_image(encoded(clear), "clear.png", 10**6, BOUNDS)
    image = Image.open(io.BytesIO(start.png))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (128, 64))
    assert (start.width, start.height) == (128, 64)
    assert image.getpixel((10, 10)) == (255, 255, 255)


def test_a_size_asked_for_is_filled_by_centre_cropping() -> None:
    start = fit_start_image(encoded(Image.new("RGB", (400, 100), "blue"), "JPEG"), "wide.jpg", 10**6, BOUNDS,
                            (256, 256))  # fmt: skip
    assert Image.open(io.BytesIO(start.png)).size == (256, 256)


def test_gif_is_not_a_start_image() -> None:
    with pytest.raises(Refusal, match="is not a PNG, JPEG or WebP image"):
        fit_start_image(encoded(Image.new("RGB", (64, 64)), "GIF"), "cat.gif", 10**6, BOUNDS)


def test_resized_leaves_an_image_of_the_size_alone() -> None:
    png = encoded(Image.new("RGB", (64, 48), "red"))
    assert resized(png, 64, 48) is png
    assert Image.open(io.BytesIO(resized(png, 128, 96))).size == (128, 96)
