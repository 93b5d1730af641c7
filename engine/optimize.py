"""The engine's speed and memory options, applied to a loaded diffusers pipeline.

Runs inside the engine process only (it imports torch). Each option keeps the
images equivalent to the plain pipeline's (the tests compare them); what it
changes is how fast they come and how much GPU memory they take.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
import torch._functorch.config
import torch._inductor.config
from diffusers import StableDiffusionPipeline

from engine.config import EngineSettings

log = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


class OptionError(ValueError):
    """The options cannot work on this machine; the message names the key and is for the operator."""


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The dtype for ``engine.dtype``: ``auto`` is fp16 on CUDA and fp32 on the CPU."""
    if setting == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return DTYPES[setting]


def check_device(settings: EngineSettings, device: torch.device) -> None:
    """Refuse options the resolved device cannot run (the config cannot tell when ``device`` is ``auto``)."""
    if settings.cuda_graphs and device.type != "cuda":
        raise OptionError(
            f"engine.cuda_graphs needs a CUDA device, but the engine runs on {device.type}: set cuda_graphs: false"
        )
    if settings.compile and not hasattr(torch.compiler, "set_stance"):
        raise OptionError(f"engine.compile needs PyTorch 2.6 or later (this is {torch.__version__})")


def place(pipe: StableDiffusionPipeline, settings: EngineSettings, device: torch.device) -> None:
    """Move the pipeline to ``device`` and apply the layout and memory options."""
    if settings.low_memory and device.type == "cuda":
        # Each network moves to the GPU only while it runs (needs accelerate): UNet-sized peak memory.
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if settings.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if settings.fuse_qkv:
        pipe.fuse_qkv_projections()
    if settings.low_memory:
        pipe.enable_attention_slicing()
        pipe.vae.enable_slicing()  # decode one image at a time
    if settings.vae_tiling:
        pipe.vae.enable_tiling()


def compile_networks(
    pipe: StableDiffusionPipeline, settings: EngineSettings, backend: str | Callable[..., Any] = "inductor"
) -> None:
    """``torch.compile`` the UNet and the VAE decoder with fixed shapes (each warmed-up shape compiles once).

    ``backend`` is ``torch.compile``'s: a name, or (in tests) a compiler function.

    The compile cache goes to ``compile_cache_dir`` so a restarted engine reads
    compiled kernels instead of compiling again.
    """
    if settings.compile_cache_dir is not None:
        settings.compile_cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(settings.compile_cache_dir.resolve())
    torch._inductor.config.fx_graph_cache = True  # on by default in recent PyTorch; said here because we rely on it
    torch._functorch.config.enable_autograd_cache = True
    # Every (size, batch) shape is a compiled variant of its own; keep them all rather than falling back to eager.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
    mode = {
        ("default", False): "default",
        ("default", True): "reduce-overhead",
        ("max-autotune", False): "max-autotune-no-cudagraphs",
        ("max-autotune", True): "max-autotune",
    }[settings.compile_mode, settings.cuda_graphs]
    options: dict[str, Any] = {"backend": backend, "dynamic": False}
    if backend == "inductor":
        options["mode"] = mode
    pipe.unet = torch.compile(pipe.unet, **options)
    # Samplers hand the UNet int or float timesteps; one dtype means one compiled variant per shape.
    # The hook sits on the compiled wrapper, so it runs before the compiled code's guards are checked.
    pipe.unet.register_forward_pre_hook(_float_timestep, with_kwargs=True)
    pipe.vae.decoder = torch.compile(pipe.vae.decoder, **options)
    log.info("compiling the UNet and VAE decoder (%s, backend %s)", mode, backend)


def _float_timestep(
    module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Pass the UNet its timestep as float32 (it turns it into float for the embedding anyway)."""
    sample, timestep, *rest = args
    if isinstance(timestep, torch.Tensor):
        timestep = timestep.to(torch.float32)
    return (sample, timestep, *rest), kwargs
