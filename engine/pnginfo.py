"""The generation parameters as PNG text, in the ``parameters`` chunk image tools read.

The text follows the AUTOMATIC1111 web UI's layout, which most Stable
Diffusion tools parse::

    a lighthouse at dusk
    Negative prompt: blurry
    Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 7, Size: 512x512, Model: sd15

Pillow only, no torch: the bot, the grid code and the simulated engine use it too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, PngImagePlugin

from engine.types import GenerationParams

PARAMETERS_KEY = "parameters"
"""The PNG text key A1111, ComfyUI importers and image viewers look for."""

SAMPLER_LABELS: dict[str, str] = {
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "euler": "Euler",
    "euler_a": "Euler a",
    "ddim": "DDIM",
    "pndm": "PNDM",
}
"""How each sampler is named in the parameters text (A1111's names)."""


def model_label(model: str) -> str:
    """The name a model is shown under: a Hugging Face id as is, a local folder by its last part only.

    The folder's full path stays private to the operator.
    """
    path = Path(model).expanduser()
    return path.resolve().name if path.exists() else model


def format_parameters(
    prompt: str, negative_prompt: str, params: GenerationParams, seeds: Sequence[int], model: str
) -> str:
    """The parameters text for one image (one seed) or a grid (several seeds).

    ``model`` is the default model's label; a job that chose another model (``params.model``) is
    written under that model's configured name. A grid names its first seed as ``Seed`` (so tools that re-run an image get
    the first one) and every seed, in grid order, as ``Seeds: "7, 8, 9"``.
    """
    if not seeds:
        raise ValueError("at least one seed is needed")
    settings = [
        f"Steps: {params.steps}",
        f"Sampler: {SAMPLER_LABELS.get(params.sampler, params.sampler)}",
        f"CFG scale: {params.guidance:g}",
        f"Seed: {seeds[0]}",
        f"Size: {params.width}x{params.height}",
        f"Model: {params.model or model}",
    ]
    if params.strength < 1.0:  # img2img: A1111 writes how far the image moved from its start image
        settings.append(f"Denoising strength: {params.strength:g}")
    if len(seeds) > 1:
        settings.append(f'Seeds: "{", ".join(str(seed) for seed in seeds)}"')
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(settings))
    return "\n".join(lines)


def encode_png(image: Image.Image, parameters: str, extra: dict[str, str] | None = None) -> bytes:
    """Encode ``image`` as PNG with ``parameters`` (and any ``extra`` text) embedded.

    The bytes depend only on the pixels and the text: no timestamps, fixed
    compression, so the same image always encodes the same.
    """
    info = PngImagePlugin.PngInfo()
    # add_text writes tEXt, or iTXt when the text is not Latin-1 (an emoji in a prompt), as A1111 does.
    for key, value in {PARAMETERS_KEY: parameters, **(extra or {})}.items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=6)
    return out.getvalue()


def read_text(png: bytes) -> dict[str, str]:
    """All PNG text chunks of ``png`` as a mapping."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return {key: str(value) for key, value in image.text.items()}


def read_parameters(png: bytes) -> str | None:
    """The parameters text embedded in ``png``, or None if it has none."""
    return read_text(png).get(PARAMETERS_KEY)
