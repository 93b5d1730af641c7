"""Engine settings: which model, on what device, within what limits."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from engine.types import SAMPLERS, Limits

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
"""The maintained Stable Diffusion 1.5 repository on the Hugging Face hub (about 5 GB in fp16 and fp32 parts)."""

SAFETY_CHECKER_WORDS = ("auto", "model", "none")
"""The named values of ``engine.safety_checker``; anything else is a classifier folder or Hugging Face id."""


def is_local(name: str) -> bool:
    """Whether ``name`` names a folder rather than a Hugging Face id (``owner/name``)."""
    return Path(name).expanduser().exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1


MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
"""A name of ``engine.models``: what members pick, short and plain."""

RAY_ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}")
"""A Ray cluster's address: ``host:port`` of its head, or ``ray://host:port`` of its Ray Client server."""


class PoolSettings(BaseModel):
    """The ``engine.pool:`` section: how many engines share the queue (more than one needs ``backend: ray``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_engines: PositiveInt = 1
    """Engines kept running: the start fails without them, and one that dies is replaced."""
    max_engines: PositiveInt = 1
    """Most engines started, as the cluster's resources allow (one per GPU by default)."""

    @model_validator(mode="after")
    def _check(self) -> PoolSettings:
        if self.min_engines > self.max_engines:
            raise ValueError(f"min_engines ({self.min_engines}) must not exceed max_engines ({self.max_engines})")
        return self


class RaySettings(BaseModel):
    """The ``engine.ray:`` section: the cluster the engines run on with ``backend: ray``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = "auto"
    """``auto`` (the cluster this machine belongs to, as ``ray start`` made it), ``local`` (start one in this
    process), ``host:port`` of the head, or ``ray://host:port`` (Ray Client)."""
    start_timeout_s: PositiveFloat = 60.0
    """How long connecting to the cluster and starting ``pool.min_engines`` engines may take."""
    num_gpus: float = Field(default=1.0, ge=0)
    """GPUs each engine actor holds (a fraction shares a GPU; 0 with ``simulated`` or ``device: cpu``)."""
    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs each engine actor holds."""
    scan_interval_s: PositiveFloat = 30.0
    """How often the pool replaces dead engines and starts new ones where the cluster has room."""

    @field_validator("address")
    @classmethod
    def _known_address(cls, address: str) -> str:
        if address not in ("auto", "local") and not RAY_ADDRESS.fullmatch(address):
            raise ValueError("must be auto, local, host:port or ray://host:port")
        return address


class EngineSettings(BaseModel):
    """The ``engine:`` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = DEFAULT_MODEL
    """A local diffusers folder or a Hugging Face id (downloaded on the first start, unless downloads are off)."""
    models: dict[str, str] = {}
    """Other models a request may choose, by name: each a folder or a Hugging Face id (SD 1.x, 2.x or SDXL, as
    ``model``; a hub id is downloaded at start). One model is loaded at a time; a batch for another swaps it in."""
    local_files_only: bool = False
    """Never reach the network for weights: the model must be a folder, or already in ``cache_dir``."""
    cache_dir: Path | None = Path("models/hub")
    """Where downloaded weights are kept (None: the Hugging Face default, ``~/.cache/huggingface``)."""
    device: Literal["auto", "cuda", "cpu"] = "auto"
    simulated: bool = False
    """Serve images from the simulated engine (no torch, no GPU): for load tests and demos."""
    simulated_seconds_per_step: float = Field(default=0.02, ge=0)
    preview_every_steps: int = Field(default=0, ge=0, le=1000)
    """Send a small preview of each job's image (drawn from the latents, no VAE) every this many steps; 0: none."""
    max_batch_images: PositiveInt = 8
    """Most images in one UNet batch (jobs sharing a batch count together)."""
    min_size: PositiveInt = 64
    max_width: PositiveInt = 1024
    max_height: PositiveInt = 1024
    max_steps: PositiveInt = 150
    max_images: int = Field(default=9, ge=1, le=9)
    max_guidance: PositiveFloat = 30.0
    max_prompt_chars: PositiveInt = 1500
    max_upscale_side: PositiveInt = 2048
    """Largest width or height of a job with a start image (an upscale is img2img at twice the size), never
    less than ``max_width`` and ``max_height``."""
    default_sampler: str = "dpmpp_2m_karras"
    start_timeout_s: PositiveFloat = 900.0
    """How long loading and warming the model may take before the start counts as failed."""
    watchdog_timeout_s: PositiveFloat = 120.0
    """A batch that reports no step for this long is taken as hung: the engine is restarted."""

    # Speed and memory. Every option's default is the plain diffusers pipeline.
    dtype: Literal["auto", "fp16", "bf16", "fp32"] = "auto"
    """Weights and activations: ``auto`` is fp16 on CUDA and fp32 on the CPU."""
    channels_last: bool = False
    """Store the UNet's and VAE's convolution tensors channels-last (faster convolutions on tensor cores)."""
    fuse_qkv: bool = False
    """Fuse each attention layer's query, key and value projections into one matmul."""
    compile: bool = False
    """``torch.compile`` the UNet and the VAE decoder, for every batch size at each of ``warm_up_sizes``: in the
    background once the engine serves (:mod:`engine.warmup`), shapes not compiled yet running uncompiled."""
    compile_mode: Literal["default", "max-autotune"] = "default"
    """``max-autotune`` tries more kernels while compiling: slower to start, maybe faster to run."""
    cuda_graphs: bool = False
    """Replay compiled batches as CUDA graphs (``reduce-overhead``): less CPU work per step. CUDA only."""
    warm_up_sizes: tuple[tuple[PositiveInt, PositiveInt], ...] = ()
    """``(width, height)`` pairs run at start (empty: 512x512, or the nearest the limits allow). With ``compile``,
    each is compiled for every batch size and other sizes run uncompiled; ``batch_size: auto`` measures the first."""
    compile_cache_dir: Path | None = None
    """Where compiled kernels are kept across restarts (None: PyTorch's default under the temp folder)."""
    batch_size: PositiveInt | Literal["auto"] | None = None
    """Images per UNet batch: a number, ``auto`` (the fastest measured at start), or None for ``max_batch_images``."""
    low_memory: bool = False
    """For small cards: attention slicing, VAE slicing and (on CUDA) model CPU offload. Slower."""
    safety_checker: str = "auto"
    """The image safety check: ``model`` (the model's own ``safety_checker/`` and ``feature_extractor/``), a
    classifier folder or Hugging Face id holding both (a ``StableDiffusionSafetyChecker`` and its CLIP image
    processor), ``none``, or ``auto`` (the model's own when it ships one, else none)."""
    backend: Literal["local", "ray"] = "local"
    """``local``: one engine on this machine. ``ray``: a pool of engines as Ray actors (``pip install
    'dreamqueue[cluster]'``), sized by ``pool`` on the cluster at ``ray.address``."""
    pool: PoolSettings = PoolSettings()
    ray: RaySettings = RaySettings()
    vae_tiling: bool = False
    """Decode images larger than the VAE's tile (512 px for SD 1.x) tile by tile: less memory, but the tiles'
    seams are blended, so large images change slightly. Images up to the tile size are not affected."""
    vae_tiling_above: int = Field(default=768 * 768, ge=64 * 64)
    """Images of more pixels than this (e.g. upscales) go through the VAE tile by tile even without
    ``vae_tiling``, so a large image's VAE passes fit in memory."""

    @model_validator(mode="after")
    def _check(self) -> EngineSettings:
        if self.default_sampler not in SAMPLERS:
            raise ValueError(f"default_sampler must be one of {', '.join(SAMPLERS)}")
        for name in ("min_size", "max_width", "max_height", "max_upscale_side"):
            if getattr(self, name) % 8:
                raise ValueError(f"{name} must be a multiple of 8")
        for width, height in self.warm_up_sizes:
            if not (self.min_size <= width <= self.max_width and self.min_size <= height <= self.max_height):
                raise ValueError(f"warm_up_sizes: {width}x{height} is outside min_size, max_width and max_height")
        if isinstance(self.batch_size, int) and self.batch_size > self.max_batch_images:
            raise ValueError(
                f"batch_size ({self.batch_size}) must not exceed max_batch_images ({self.max_batch_images})"
            )
        needs = {
            "compile_mode": (self.compile_mode != "default", self.compile, "compile: true"),
            "cuda_graphs": (self.cuda_graphs, self.compile, "compile: true"),
            # Offload hooks and sliced attention replace what compiling and fusing would speed up.
            "low_memory": (self.low_memory, not (self.compile or self.fuse_qkv), "compile: false and fuse_qkv: false"),
        }
        for name, (used, allowed, requirement) in needs.items():
            if used and not allowed:
                raise ValueError(f"{name} needs {requirement}")
        if self.cuda_graphs and self.device == "cpu":
            raise ValueError("cuda_graphs needs a CUDA device, not device: cpu")
        if self.backend == "local" and self.pool.max_engines > 1:
            raise ValueError(f"pool.max_engines ({self.pool.max_engines}) above 1 needs backend: ray")
        return self

    @field_validator("safety_checker")
    @classmethod
    def _known_classifier(cls, name: str) -> str:
        if name in SAFETY_CHECKER_WORDS:
            return name
        if is_local(name):
            if not Path(name).expanduser().is_dir():
                raise ValueError(f"no classifier folder at {name}")
            return name
        if name.count("/") != 1 or not all(name.split("/")):
            raise ValueError(
                f"unknown classifier {name!r}: use {', '.join(SAFETY_CHECKER_WORDS)}, a folder, or a Hugging Face id"
            )
        return name

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: dict[str, str]) -> dict[str, str]:
        for name, source in models.items():
            if not MODEL_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: a model's name is 1-32 lowercase letters, digits, '-', '_' or '.'")
            if is_local(source):
                if not (Path(source).expanduser() / "model_index.json").is_file():
                    raise ValueError(f"{name}: no diffusers model folder (with a model_index.json) at {source}")
            elif source.count("/") != 1 or not all(source.split("/")):
                raise ValueError(f"{name}: {source!r} is neither a model folder nor a Hugging Face id (owner/name)")
        return models

    @field_validator("backend")
    @classmethod
    def _ray_installed(cls, backend: str) -> str:
        if backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError("ray needs the Ray package, which is not installed: pip install 'dreamqueue[cluster]'")
        return backend

    @field_validator("warm_up_sizes")
    @classmethod
    def _sizes_are_multiples_of_8(cls, sizes: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        for width, height in sizes:
            if width % 8 or height % 8:
                raise ValueError(f"{width}x{height}: width and height must be multiples of 8")
        return sizes

    @property
    def start_sizes(self) -> tuple[tuple[int, int], ...]:
        """The ``(width, height)`` pairs run at start: ``warm_up_sizes``, or one typical size within the limits."""
        if self.warm_up_sizes:
            return self.warm_up_sizes
        size = max(self.min_size, min(512, self.max_width, self.max_height))
        return ((size, size),)

    @property
    def limits(self) -> Limits:
        """The request limits these settings impose."""
        return Limits(
            min_size=self.min_size,
            max_width=self.max_width,
            max_height=self.max_height,
            max_steps=self.max_steps,
            max_images=self.max_images,
            max_guidance=self.max_guidance,
            max_prompt_chars=self.max_prompt_chars,
            models=tuple(self.models),
            max_upscale_side=self.max_upscale_side,
        )
