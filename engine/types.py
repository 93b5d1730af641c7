"""What the bot asks of the engine and what it gets back.

Plain dataclasses with no torch import, so the bot, the scheduler and the
simulated engine can use them without loading the GPU stack.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

SAMPLERS: tuple[str, ...] = ("dpmpp_2m", "dpmpp_2m_karras", "euler", "euler_a", "ddim", "pndm")
"""Sampler names accepted in requests, in the order shown to members."""

MAX_SEED = 2**32 - 1
"""Seeds are unsigned 32-bit so they are easy to read, type and share."""


class RequestError(ValueError):
    """A request that cannot be generated; ``field`` names the offending option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Limits:
    """The bounds a request must fall within (from the engine settings)."""

    min_size: int = 64
    max_width: int = 1024
    max_height: int = 1024
    max_steps: int = 150
    max_images: int = 9
    max_guidance: float = 30.0
    max_prompt_chars: int = 1500
    models: tuple[str, ...] = ()
    """Names of the models a request may pick besides the default (``GenerationParams.model`` empty)."""
    max_upscale_side: int = 2048
    """Largest width or height of a job with a start image (an upscale is img2img at twice the size); never
    below ``max_width`` and ``max_height``."""

    def with_start_image(self) -> Limits:
        """The limits of a job with a start image: sides up to :attr:`max_upscale_side`."""
        return replace(
            self,
            max_width=max(self.max_width, self.max_upscale_side),
            max_height=max(self.max_height, self.max_upscale_side),
        )


@dataclass(frozen=True)
class GenerationParams:
    """The settings that must match for jobs to share one UNet batch."""

    width: int = 512
    height: int = 512
    steps: int = 25
    guidance: float = 7.0
    sampler: str = "dpmpp_2m_karras"
    strength: float = 1.0
    """How far img2img moves from the start image, 0-1 (1: all new noise); below 1 only with a start image."""
    model: str = ""
    """The configured model to use; empty: the engine's default. Jobs share a batch only on one model."""

    @property
    def denoise_steps(self) -> int:
        """The denoising steps that actually run: img2img skips the first ``1 - strength`` of them."""
        return max(1, int(self.steps * self.strength))

    def validate(self, limits: Limits) -> None:
        """Raise :class:`RequestError` naming the first option outside ``limits``."""
        for name, value, upper in (("width", self.width, limits.max_width), ("height", self.height, limits.max_height)):
            if not limits.min_size <= value <= upper:
                raise RequestError(name, f"must be between {limits.min_size} and {upper}, got {value}")
            if value % 8:
                raise RequestError(name, f"must be a multiple of 8, got {value}")
        if not 1 <= self.steps <= limits.max_steps:
            raise RequestError("steps", f"must be between 1 and {limits.max_steps}, got {self.steps}")
        if not 0.0 <= self.guidance <= limits.max_guidance:
            raise RequestError("guidance", f"must be between 0 and {limits.max_guidance:g}, got {self.guidance:g}")
        if self.sampler not in SAMPLERS:
            raise RequestError("sampler", f"must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not 0.0 < self.strength <= 1.0:
            raise RequestError("strength", f"must be above 0 and at most 1, got {self.strength:g}")
        if self.model and self.model not in limits.models:
            offered = ", ".join(limits.models) or "only the default"
            raise RequestError("model", f"must be one of the configured models ({offered}), got {self.model!r}")


@dataclass(frozen=True)
class JobRequest:
    """One member's job: a prompt rendered once per seed."""

    job_id: str
    prompt: str
    seeds: tuple[int, ...]
    params: GenerationParams = GenerationParams()
    negative_prompt: str = ""
    init_image: bytes | None = None
    """The start image for img2img: PNG bytes of exactly ``params.width`` x ``params.height``; None: from noise."""

    @property
    def count(self) -> int:
        """Number of images the job makes."""
        return len(self.seeds)

    @property
    def cost(self) -> int:
        """GPU cost in units of one 64x64-latent-pixel step: images x steps run x pixels / 4096.

        img2img runs only ``strength`` of the steps, so a subtle variation costs less than a new image.
        """
        return self.count * self.params.denoise_steps * (self.params.width * self.params.height // 4096)

    def validate(self, limits: Limits, *, image_to_come: bool = False) -> None:
        """Raise :class:`RequestError` naming the first invalid field; ``image_to_come``: check the options of a
        job whose start image is not read yet (the bot checks them before it downloads the image)."""
        if not self.prompt.strip():
            raise RequestError("prompt", "must not be empty")
        if len(self.prompt) > limits.max_prompt_chars:
            raise RequestError("prompt", f"must be at most {limits.max_prompt_chars} characters")
        if not 1 <= self.count <= limits.max_images:
            raise RequestError("count", f"must be between 1 and {limits.max_images}, got {self.count}")
        for seed in self.seeds:
            if not 0 <= seed <= MAX_SEED:
                raise RequestError("seed", f"must be between 0 and {MAX_SEED}, got {seed}")
        if self.init_image is None and not image_to_come:
            self.params.validate(limits)
            if self.params.strength < 1.0:
                raise RequestError("strength", "needs a start image")
            return
        self.params.validate(limits.with_start_image())
        if self.init_image is None:
            return
        size = png_size(self.init_image)
        if size != (self.params.width, self.params.height):
            got = "not a PNG" if size is None else f"{size[0]}x{size[1]}"
            raise RequestError("init_image", f"must be a {self.params.width}x{self.params.height} PNG, got {got}")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's header (no decoding: cheap enough for the event loop); None if not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class Outcome(enum.StrEnum):
    """How a job left the engine."""

    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SafetyVerdict:
    """What the engine's image safety check said of one image.

    ``score`` runs from 0 (nothing like a flagged concept) to 1 (certainly
    flagged); 0.5 is the classifier's own yes/no line. ``label`` is the
    classifier's yes/no (``flagged`` or ``ok``); ``model`` names the classifier.
    """

    label: str
    score: float
    model: str

    @classmethod
    def from_score(cls, score: float, model: str) -> SafetyVerdict:
        """The verdict for ``score``: ``flagged`` above the classifier's line (0.5), else ``ok``."""
        return cls("flagged" if score > 0.5 else "ok", score, model)


@dataclass(frozen=True)
class GeneratedImage:
    """One image as PNG bytes, with the generation parameters embedded as PNG text.

    ``safety`` is the image safety check's verdict; None when the engine checks no images.
    """

    seed: int
    png: bytes
    safety: SafetyVerdict | None = None


@dataclass(frozen=True)
class JobResult:
    """The engine's answer for one job of a batch.

    ``error`` is set for failed and cancelled jobs and is safe to show a member.
    ``retryable`` says the failure was the engine's (crash, hang), not the job's.
    """

    job_id: str
    outcome: Outcome
    images: tuple[GeneratedImage, ...] = ()
    error: str | None = None
    retryable: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    """A step of a running batch, reported for each job in it."""

    job_id: str
    step: int
    steps: int
    preview: bytes | None = None
    """A small JPEG of the job's first image as it stands at this step, when the engine made one."""


RESTART_CAUSES = ("crashed", "hung")
"""Why an engine is restarted: its process died, or a batch stopped reporting steps. ``EngineHealth.extra``
counts each as ``restarts_<cause>``."""


@dataclass(frozen=True)
class EngineHealth:
    """A snapshot of the engine for status commands and the watchdog."""

    ready: bool
    busy: bool
    restarts: int = 0
    device: str = ""
    model: str = ""
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    safety_checker: str = ""
    """The classifier that checks every image before it leaves the engine; empty: images are not checked."""
    sizes: tuple[tuple[int, int], ...] = ()
    """``(width, height)`` the engine has warm (compiled, when it compiles); empty: not known (any size runs)."""
    free_memory_mb: float | None = None
    """Free device memory as the engine last measured it (CUDA); None where not known."""
    images_per_second: float | None = None
    """Speed measured over the engine's recent batches; None before its first."""
    engines: tuple[EngineHealth, ...] = ()
    """A pool's health: each engine's own."""


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


class EngineClient(Protocol):
    """What the bot side holds: the engine process client and the simulated engine both fit."""

    limits: Limits

    async def start(self) -> None:
        """Start the engine and wait until it reports ready."""

    async def close(self) -> None:
        """Stop the engine; jobs still running fail with a clear reason."""

    async def generate(
        self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None = None
    ) -> list[JobResult]:
        """Generate ``jobs`` (compatible ones may share a batch); one result per job, in order.

        Never raises for a job's own failure: crashes, hangs, cancellations and bad
        requests come back as results with ``outcome`` and ``error`` set.
        """

    async def cancel(self, job_id: str) -> bool:
        """Cancel a waiting or running job; False if the engine does not hold it."""

    def health(self) -> EngineHealth:
        """The current state of the engine."""
