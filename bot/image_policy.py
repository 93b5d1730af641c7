"""What happens to a finished job's images, by the safety check's scores: posted, spoilered for review, or withheld.

A server's policy is two score bands (config default, server override), one
for ordinary channels and one its admins may loosen for age-restricted (NSFW)
channels. Under ``allow_below`` an image is posted as it is; from
``block_at`` it is withheld: never posted, shown to the moderators only; in
between it is posted behind a spoiler and put in the review queue.

A job's grid is shown or withheld whole, by its highest score: its buttons,
and a moderator's restore after review, work on the job's stored images, so a
job never shows some of its images while withholding others. Images the
engine did not check (no classifier) are posted. No discord import: the
scores are the test seam (verdicts built by hand, or the simulated engine's
forced scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.metrics import BotMetrics
from bot.scheduler.models import JobView
from engine.types import GeneratedImage, SafetyVerdict
from moderation.flags import FlaggedImage, FlagStore, ReviewItem

Action = Literal["allow", "review", "block"]


@dataclass(frozen=True)
class Bands:
    """Scores under ``allow_below`` are posted, scores from ``block_at`` withheld, those between reviewed."""

    allow_below: float
    block_at: float

    def action(self, score: float) -> Action:
        """What to do with an image of this score."""
        if score >= self.block_at:
            return "block"
        return "allow" if score < self.allow_below else "review"

    def overridden(self, allow_below: float | None, block_at: float | None) -> Bands:
        """These bands with the given bounds instead (None keeps a bound): the NSFW channels' bands."""
        return Bands(
            self.allow_below if allow_below is None else allow_below, self.block_at if block_at is None else block_at
        )


def band_problem(allow_below: float, block_at: float, prefix: str = "") -> str | None:
    """Why ``allow_below`` and ``block_at`` (named with ``prefix``) make no band; None if they do."""
    if allow_below > block_at:
        return f"{prefix}allow_below ({allow_below:g}) must not be above {prefix}block_at ({block_at:g})"
    return None


class ImagePolicySettings(BaseModel):
    """The ``image_policy:`` section: every server's default bands (scores run from 0 to 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_below: float = Field(default=0.25, ge=0, le=1)
    """Images scoring under this are posted as they are (0.25: a cosine margin of about -0.011 for diffusers'
    checker, whose own yes/no line is 0.5)."""
    block_at: float = Field(default=0.5, ge=0, le=1)
    """Images scoring this or more are withheld (0.5: whatever the classifier itself flags)."""
    nsfw_allow_below: float | None = Field(default=None, ge=0, le=1)
    """``allow_below`` in age-restricted channels; None: as in other channels."""
    nsfw_block_at: float | None = Field(default=None, ge=0, le=1)
    """``block_at`` in age-restricted channels; None: as in other channels."""

    @model_validator(mode="after")
    def _bands(self) -> ImagePolicySettings:
        ordinary = Bands(self.allow_below, self.block_at)
        nsfw = ordinary.overridden(self.nsfw_allow_below, self.nsfw_block_at)
        problem = band_problem(ordinary.allow_below, ordinary.block_at) or band_problem(
            nsfw.allow_below, nsfw.block_at, "nsfw_"
        )
        if problem:
            raise ValueError(problem)
        return self


@dataclass(frozen=True)
class ImageDecision:
    """A job's grid to withhold (``block``) or to spoiler for review (``review``), and the verdict that said so."""

    action: Literal["review", "block"]
    verdict: SafetyVerdict


def decide(images: Sequence[GeneratedImage], bands: Bands) -> ImageDecision | None:
    """What to do with a job's grid, by its highest-scoring checked image; None: post it as it is."""
    verdicts = [image.safety for image in images if image.safety is not None]
    if not verdicts:
        return None
    worst = max(verdicts, key=lambda verdict: verdict.score)
    action = bands.action(worst.score)
    return None if action == "allow" else ImageDecision(action, worst)


class SafetyRecords:
    """Where the safety check's decisions are recorded: withheld images counted (the metric; their audit entry
    is written with the member's warning, :func:`withheld_entry`), spoilered grids put in the review queue."""

    def __init__(self, metrics: BotMetrics, flags: FlagStore) -> None:
        self._metrics = metrics
        self._flags = flags

    def count_withheld(self, job: JobView) -> None:
        """Count a job's images withheld from its channel (once per job: the caller knows a repeat)."""
        self._metrics.images_withheld.inc(len(job.seeds))

    async def hold_for_review(self, job: JobView, message_id: int, verdict: SafetyVerdict) -> ReviewItem:
        """Put a job's posted, spoilered grid in its server's review queue (audited with the score)."""
        image = FlaggedImage(message_id, job.guild_id, job.member_id, job.prompt, job.job_id, job.channel_id)
        return await self._flags.hold_for_review(image, f"job #{job.number}: {describe(verdict)}")


def withheld_entry(job: JobView, verdict: SafetyVerdict, bands: Bands) -> tuple[str, str]:
    """The audit entry (action, detail) of a job's grid withheld from its channel."""
    return "image_withheld", f"job #{job.number}: {describe(verdict)}, withheld from {bands.block_at:g}"


def describe(verdict: SafetyVerdict) -> str:
    """A verdict in a few words, for moderators and the audit log."""
    return f"{verdict.model} scored {verdict.score:.3f} ({verdict.label})"
