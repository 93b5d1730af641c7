"""Random Stable Diffusion pipelines written to disk, for tests, demos and benchmarks.

Nothing is downloaded: every component is built from a config with random
weights (fixed seed), saved with ``save_pretrained`` in the layout of a real
Stable Diffusion repository, and loaded back by the engine through the same
code that loads real weights.

``write_tiny_model`` makes a model small enough for a 64x64 image in a fraction
of a second on a CPU; ``write_random_sd15`` makes the full Stable Diffusion 1.5
architecture (same arithmetic as the real weights) for benchmarks.
``write_safety_checker`` makes an image safety classifier of the real
kind (a CLIP image tower and concept embeddings) with a tiny tower, whose
verdict is fixed by its concept threshold whatever its random weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

SEED = 0
"""Weights are drawn from this seed, so every written model is the same."""

# The scheduler Stable Diffusion 1.x ships with; the engine swaps samplers from this config.
SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}

_TOKENIZER_CONFIG = {
    "tokenizer_class": "CLIPTokenizer",
    "model_max_length": 77,
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "do_lower_case": True,
}

# A few merges so the BPE path is exercised; every byte is still a token on its own.
_MERGES = (("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n"), ("o", "n</w>"), ("e", "r</w>"))


@dataclass(frozen=True)
class Architecture:
    """Configs for the three networks of a Stable Diffusion pipeline."""

    unet: dict[str, Any]
    vae: dict[str, Any]
    text: dict[str, Any]


TINY = Architecture(
    unet={
        "sample_size": 8,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        # Attention at the lower resolution only, so a 512x512 demo image stays quick on a CPU.
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    },
    # Four blocks keep Stable Diffusion's 8x downscale, so sizes behave as with real models.
    vae={
        "sample_size": 64,
        "block_out_channels": (8, 16, 16, 16),
        "layers_per_block": 1,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
        "norm_num_groups": 8,
    },
    text={
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "projection_dim": 32,
    },
)

SD15 = Architecture(
    unet={
        "sample_size": 64,
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    },
    vae={
        "sample_size": 512,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "latent_channels": 4,
    },
    # CLIP ViT-L/14's text tower, as used by Stable Diffusion 1.x.
    text={
        "vocab_size": 49408,  # the real vocabulary's size (the byte-level tokenizer uses its first ids only)
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
)


TINY_VISION = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
"""The tiny checker's CLIP image tower: 32x32 inputs, 16 patches."""
SD_SAFETY_VISION = {
    "image_size": 224,
    "patch_size": 14,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "hidden_act": "quick_gelu",
}
"""CLIP ViT-L/14's image tower, as in the safety checker Stable Diffusion 1.x ships (for benchmarks)."""
SAFE, FLAGGED = 1.0, -1.0
"""Concept thresholds for :func:`random_safety_checker`: a cosine similarity never exceeds 1 (nothing is
flagged) and always exceeds -1 (everything is)."""


def write_tiny_model(dest: Path) -> Path:
    """Write the tiny random pipeline to ``dest`` (created if needed) and return ``dest``."""
    return write_random_pipeline(dest, TINY)


def random_safety_checker(
    threshold: float = SAFE, vision: dict[str, Any] = TINY_VISION, projection_dim: int = 32
) -> tuple[StableDiffusionSafetyChecker, CLIPImageProcessor]:
    """A random safety checker (a tiny image tower by default) whose 17 concepts all have ``threshold``, and
    its image processor."""
    config = CLIPConfig(text_config=TINY.text, vision_config=vision, projection_dim=projection_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        checker = StableDiffusionSafetyChecker(config)
        checker.concept_embeds.data = torch.randn(17, config.projection_dim)
        checker.special_care_embeds.data = torch.randn(3, config.projection_dim)
    checker.concept_embeds_weights.data.fill_(threshold)
    checker.special_care_embeds_weights.data.fill_(SAFE)  # no special care: the threshold alone decides
    side = vision["image_size"]
    processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    return checker, processor


def write_safety_checker(
    dest: Path, threshold: float = SAFE, *, sd_size: bool = False, dtype: torch.dtype = torch.float32
) -> Path:
    """Write a random checker (see :func:`random_safety_checker`; ``sd_size``: the real one's architecture, for
    benchmarks) as a classifier folder: weights, config and image processor side by side, as the Hugging Face
    repository of the real one ships them."""
    checker, processor = random_safety_checker(threshold, *((SD_SAFETY_VISION, 768) if sd_size else ()))
    checker.to(dtype=dtype).save_pretrained(dest)
    processor.save_pretrained(dest)
    return Path(dest)


def write_tiny_model_with_checker(dest: Path, threshold: float = SAFE) -> Path:
    """Write the tiny pipeline with a tiny checker in its ``safety_checker/`` and ``feature_extractor/``."""
    write_tiny_model(dest)
    checker, processor = random_safety_checker(threshold)
    checker.save_pretrained(Path(dest) / "safety_checker")
    processor.save_pretrained(Path(dest) / "feature_extractor")
    index_path = Path(dest) / "model_index.json"
    index = json.loads(index_path.read_text("utf-8"))
    index |= {"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
              "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": True}  # fmt: skip
    index_path.write_text(json.dumps(index, indent=2), "utf-8")
    return Path(dest)


def write_random_sd15(dest: Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write the Stable Diffusion 1.5 architecture with random weights to ``dest``."""
    return write_random_pipeline(dest, SD15, dtype=dtype)


def write_random_pipeline(dest: Path, arch: Architecture, dtype: torch.dtype = torch.float32) -> Path:
    """Build ``arch`` with random weights from a fixed seed and save it as a diffusers folder."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer(dest / "tokenizer")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel(**arch.unet)
        vae = AutoencoderKL(**arch.vae)
        text_config = {
            "vocab_size": len(tokenizer),
            "max_position_embeddings": tokenizer.model_max_length,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        text_encoder = CLIPTextModel(CLIPTextConfig(**(text_config | arch.text)))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    pipe.save_pretrained(dest)
    # save_pretrained writes the tokenizer as tokenizer.json; put back the files real repositories ship.
    write_tokenizer(dest / "tokenizer")
    return dest


def write_tokenizer(folder: Path) -> CLIPTokenizer:
    """Write a byte-level CLIP tokenizer as ``vocab.json`` + ``merges.txt`` and load it back."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").unlink(missing_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in _byte_alphabet():
            vocab[char + suffix] = len(vocab)
    for left, right in _MERGES:
        vocab[left + right] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in _MERGES), "utf-8"
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG, indent=2), "utf-8")
    return CLIPTokenizer.from_pretrained(folder)


def _byte_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the 256 byte values (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(shifted)) for b in range(256)]
