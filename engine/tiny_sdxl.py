"""A tiny random Stable Diffusion XL pipeline written to disk, for tests and demos (nothing is downloaded).

The SDXL layout: two CLIP text encoders (the second with a projection, whose
pooled output and the image's size and crop condition the UNet through its
``text_time`` embedding), two tokenizers, a UNet whose cross-attention sees
both encoders' hidden states side by side, and a VAE. Each network is as small
as in :data:`engine.tiny.TINY`, so a 64x64 image takes a fraction of a second
on a CPU; the engine loads it through the same code as real SDXL weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from engine.tiny import SCHEDULER_CONFIG, SEED, TINY, write_tokenizer

TIME_EMBED_DIM = 8
"""Width of each of the six size-and-crop numbers' embeddings (SDXL: 256)."""

TINY_SDXL_UNET: dict[str, Any] = {
    "sample_size": 8,
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "transformer_layers_per_block": (1, 2),
    "cross_attention_dim": 2 * TINY.text["hidden_size"],  # both text encoders' hidden states, concatenated
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": TIME_EMBED_DIM,
    # Six size-and-crop numbers, each embedded, then the second encoder's pooled projection.
    "projection_class_embeddings_input_dim": 6 * TIME_EMBED_DIM + TINY.text["projection_dim"],
    "norm_num_groups": 32,
}


def write_tiny_sdxl(dest: Path) -> Path:
    """Write the tiny random SDXL pipeline to ``dest`` (created if needed) and return ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer(dest / "tokenizer")
    tokenizer_2 = write_tokenizer(dest / "tokenizer_2")
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY.text,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        pipe = StableDiffusionXLPipeline(
            vae=AutoencoderKL(**TINY.vae),
            text_encoder=CLIPTextModel(text_config),
            text_encoder_2=CLIPTextModelWithProjection(text_config),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=UNet2DConditionModel(**TINY_SDXL_UNET),
            scheduler=EulerDiscreteScheduler(
                **{
                    key: value
                    for key, value in SCHEDULER_CONFIG.items()
                    if key not in ("set_alpha_to_one", "skip_prk_steps")
                }
            ),
            add_watermarker=False,
        )
    pipe.save_pretrained(dest)
    # save_pretrained writes the tokenizers as tokenizer.json; put back the files real repositories ship.
    write_tokenizer(dest / "tokenizer")
    write_tokenizer(dest / "tokenizer_2")
    return dest
