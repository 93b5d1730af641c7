"""Engine settings: which model, on what device, within what limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from engine.types import SAMPLERS, Limits


class EngineSettings(BaseModel):
    """The ``engine:`` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    """A local diffusers folder or a Hugging Face id; None until the operator sets one."""
    local_files_only: bool = True
    """Never reach the network for weights (offline-safe)."""
    cache_dir: Path | None = None
    device: Literal["auto", "cuda", "cpu"] = "auto"
    simulated: bool = False
    """Serve images from the simulated engine (no torch, no GPU): for load tests and demos."""
    simulated_seconds_per_step: float = Field(default=0.02, ge=0)
    max_batch_images: PositiveInt = 8
    """Most images in one UNet batch (jobs sharing a batch count together)."""
    min_size: PositiveInt = 64
    max_width: PositiveInt = 1024
    max_height: PositiveInt = 1024
    max_steps: PositiveInt = 150
    max_images: int = Field(default=9, ge=1, le=9)
    max_guidance: PositiveFloat = 30.0
    max_prompt_chars: PositiveInt = 1500
    default_sampler: str = "dpmpp_2m_karras"
    start_timeout_s: PositiveFloat = 900.0
    """How long loading and warming the model may take before the start counts as failed."""
    watchdog_timeout_s: PositiveFloat = 120.0
    """A batch that reports no step for this long is taken as hung: the engine is restarted."""

    @model_validator(mode="after")
    def _check(self) -> EngineSettings:
        if self.default_sampler not in SAMPLERS:
            raise ValueError(f"default_sampler must be one of {', '.join(SAMPLERS)}")
        for name in ("min_size", "max_width", "max_height"):
            if getattr(self, name) % 8:
                raise ValueError(f"{name} must be a multiple of 8")
        return self

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
        )
