"""Image grids: a job's images side by side in one PNG, with an index to cut each one out again.

A grid keeps every image at full size, so a member can later ask for one image
and get exactly its pixels back. The grid's PNG carries the parameters text
(prompt and all seeds) and, under ``dreamqueue-grid``, a JSON index of where
each seed's image sits.

Pillow only, no torch; callers on the event loop run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from engine.pnginfo import encode_png, format_parameters, read_parameters, read_text
from engine.types import GeneratedImage, JobRequest

GRID_KEY = "dreamqueue-grid"
"""PNG text key of the grid index (JSON)."""

MAX_GRID_IMAGES = 9
GUTTER = 4
"""Pixels between neighbouring images (no border around the edge)."""
BACKGROUND = (0, 0, 0)


@dataclass(frozen=True)
class Box:
    """Where one image sits in a grid, in pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(left, upper, right, lower), as Pillow's ``crop`` takes it."""
        return (self.x, self.y, self.x + self.width, self.y + self.height)


@dataclass(frozen=True)
class GridCell:
    """One image of a grid: its seed and its box."""

    seed: int
    box: Box


@dataclass(frozen=True)
class Grid:
    """A grid PNG (parameters and index embedded) and its layout."""

    png: bytes
    columns: int
    rows: int
    cells: tuple[GridCell, ...]


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) of the near-square grid for ``count`` images: 1x1, 2x1, 2x2, 2x2, 3x2, 3x2, 3x3..."""
    if not 1 <= count <= MAX_GRID_IMAGES:
        raise ValueError(f"a grid holds 1 to {MAX_GRID_IMAGES} images, got {count}")
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


def make_grid(images: Sequence[GeneratedImage], parameters: str, *, gutter: int = GUTTER) -> Grid:
    """Lay ``images`` (all the same size) out row by row in a near-square grid.

    ``parameters`` is the text for the whole grid, normally
    :func:`engine.pnginfo.format_parameters` with every seed.
    """
    columns, rows = grid_shape(len(images))
    tiles = [_decode(image.png) for image in images]
    width, height = tiles[0].size
    if any(tile.size != (width, height) for tile in tiles):
        raise ValueError("all images of a grid must have the same size")
    canvas = Image.new(
        "RGB", (columns * width + (columns - 1) * gutter, rows * height + (rows - 1) * gutter), BACKGROUND
    )
    cells = []
    for index, (image, tile) in enumerate(zip(images, tiles, strict=True)):
        row, column = divmod(index, columns)
        box = Box(column * (width + gutter), row * (height + gutter), width, height)
        canvas.paste(tile, (box.x, box.y))
        cells.append(GridCell(image.seed, box))
    index_text = json.dumps(
        {
            "cells": [
                {"seed": cell.seed, "box": [cell.box.x, cell.box.y, cell.box.width, cell.box.height]} for cell in cells
            ]
        },
        separators=(",", ":"),
    )
    return Grid(encode_png(canvas, parameters, {GRID_KEY: index_text}), columns, rows, tuple(cells))


def job_grid(job: JobRequest, images: Sequence[GeneratedImage], model: str) -> Grid:
    """The grid of one job's images; its parameters text names the prompt and every seed, in grid order."""
    seeds = [image.seed for image in images]
    return make_grid(images, format_parameters(job.prompt, job.negative_prompt, job.params, seeds, model))


def read_grid_index(png: bytes) -> tuple[GridCell, ...]:
    """The cells recorded in a grid PNG made by :func:`make_grid`."""
    text = read_text(png).get(GRID_KEY)
    if text is None:
        raise ValueError("this PNG is not a dreamqueue grid")
    return tuple(GridCell(cell["seed"], Box(*cell["box"])) for cell in json.loads(text)["cells"])


def cut_out(png: bytes, index: int, parameters: str) -> GeneratedImage:
    """Image number ``index`` (0-based, grid order) of a grid PNG at full size, with its own ``parameters``."""
    cells = read_grid_index(png)
    if not 0 <= index < len(cells):
        raise IndexError(f"the grid has images 0 to {len(cells) - 1}, not {index}")
    cell = cells[index]
    return GeneratedImage(cell.seed, encode_png(_decode(png).crop(cell.box.bounds), parameters))


def _decode(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def to_jpeg(png: bytes, quality: int = 95) -> bytes:
    """``png`` re-encoded as a JPEG, its generation parameters kept as the JPEG's comment. CPU-bound."""
    parameters = read_parameters(png) or ""
    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(out, format="JPEG", quality=quality, comment=parameters.encode("utf-8"))
    return out.getvalue()
