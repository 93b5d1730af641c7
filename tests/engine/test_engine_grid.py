"""Grids: layout for 1 to 9 images, parameters and index embedded, cells cut out at full size."""

import io

import pytest
from PIL import Image

from engine.grid import GUTTER, Box, cut_out, grid_shape, job_grid, make_grid, read_grid_index
from engine.pnginfo import encode_png, format_parameters, read_parameters
from engine.types import GeneratedImage, GenerationParams, JobRequest

SIZE = (24, 16)  # width, height: not square, so rows and columns cannot be confused


def image(seed: int) -> GeneratedImage:
    """A flat image whose colour encodes its seed."""
    return GeneratedImage(seed, encode_png(Image.new("RGB", SIZE, (seed * 20, 255 - seed * 20, 100)), f"seed {seed}"))


def pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


@pytest.mark.parametrize(
    ("count", "shape"),
    [
        (1, (1, 1)),
        (2, (2, 1)),
        (3, (2, 2)),
        (4, (2, 2)),
        (5, (3, 2)),
        (6, (3, 2)),
        (7, (3, 3)),
        (8, (3, 3)),
        (9, (3, 3)),
    ],
)
def test_layout(count: int, shape: tuple[int, int]) -> None:
    assert grid_shape(count) == shape
    grid = make_grid([image(seed) for seed in range(1, count + 1)], "p")
    columns, rows = shape
    assert (grid.columns, grid.rows) == shape
    assert pixels(grid.png).size == (columns * SIZE[0] + (columns - 1) * GUTTER, rows * SIZE[1] + (rows - 1) * GUTTER)
    assert [cell.seed for cell in grid.cells] == list(range(1, count + 1))
    # Row by row, left to right, a gutter between neighbours.
    assert grid.cells[0].box == Box(0, 0, *SIZE)
    if count >= 2:
        assert grid.cells[1].box == Box(SIZE[0] + GUTTER, 0, *SIZE)
    if rows > 1:
        assert grid.cells[columns].box == Box(0, SIZE[1] + GUTTER, *SIZE)


@pytest.mark.parametrize("count", [0, 10])
def test_counts_outside_one_to_nine_are_refused(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 9"):
        grid_shape(count)


def test_every_cell_holds_its_image_and_gutters_stay_dark() -> None:
    images = [image(seed) for seed in range(1, 6)]
    grid = make_grid(images, "p")
    canvas = pixels(grid.png)
    for source, cell in zip(images, grid.cells, strict=True):
        assert canvas.crop(cell.box.bounds).tobytes() == pixels(source.png).tobytes()
    assert canvas.getpixel((SIZE[0] + GUTTER // 2, 0)) == (0, 0, 0)


def test_parameters_and_index_are_embedded() -> None:
    params = GenerationParams(width=SIZE[0], height=SIZE[1], steps=4)
    text = format_parameters("a lighthouse", "", params, [7, 8, 9, 10], "tiny")
    grid = make_grid([image(seed) for seed in (7, 8, 9, 10)], text)
    assert read_parameters(grid.png) == text
    assert "a lighthouse" in text and '"7, 8, 9, 10"' in text
    assert read_grid_index(grid.png) == grid.cells


def test_job_grid_names_the_prompt_and_every_seed() -> None:
    job = JobRequest(
        "j", "a lighthouse", (7, 8, 9, 10), GenerationParams(width=SIZE[0], height=SIZE[1], steps=4), "fog"
    )
    grid = job_grid(job, [image(seed) for seed in job.seeds], "tiny")
    assert (grid.columns, grid.rows) == (2, 2)
    assert read_parameters(grid.png) == format_parameters("a lighthouse", "fog", job.params, [7, 8, 9, 10], "tiny")


def test_the_same_images_give_the_same_bytes() -> None:
    assert make_grid([image(1), image(2)], "p").png == make_grid([image(1), image(2)], "p").png


def test_cut_out_gives_one_image_at_full_size() -> None:
    images = [image(seed) for seed in range(1, 5)]
    grid = make_grid(images, "grid text")
    single = cut_out(grid.png, 2, "seed 3 text")
    assert single.seed == 3
    assert pixels(single.png).tobytes() == pixels(images[2].png).tobytes()
    assert read_parameters(single.png) == "seed 3 text"
    with pytest.raises(IndexError):
        cut_out(grid.png, 4, "")


def test_images_of_different_sizes_are_refused() -> None:
    odd = GeneratedImage(2, encode_png(Image.new("RGB", (8, 8)), "x"))
    with pytest.raises(ValueError, match="same size"):
        make_grid([image(1), odd], "p")


def test_a_plain_png_has_no_grid_index() -> None:
    with pytest.raises(ValueError, match="not a dreamqueue grid"):
        read_grid_index(image(1).png)
