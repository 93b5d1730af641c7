"""The result controls' jobs: *Vary (subtle)*, *Vary (strong)*, *Upscale 2×* and *Remix* of one stored image.

Each makes an img2img job from the image, as the clicker's own job, through
:meth:`bot.services.Services.dream`: the same prompt filter, quotas, fair queue
and journal as ``/dream``. What a control will cost is worked out here too, so
the member sees it before they click. Nothing here imports discord.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, replace

from bot.attachments import resized
from bot.guild_settings import ServerSettings
from bot.refusal import Refusal
from bot.scheduler.models import Admission, DreamRequest, JobState, JobView, Member
from bot.scheduler.quotas import images_charged
from bot.services import Services, random_seeds
from engine.types import GeneratedImage, GenerationParams, JobRequest


class Control(enum.StrEnum):
    """What a control makes of an image; the value is its server setting's prefix and its custom id's action."""

    VARY_SUBTLE = "vary_subtle"
    VARY_STRONG = "vary_strong"
    UPSCALE = "upscale"

    @property
    def label(self) -> str:
        return {"vary_subtle": "Vary (subtle)", "vary_strong": "Vary (strong)", "upscale": "Upscale 2×"}[self]


@dataclass(frozen=True)
class Plan:
    """The job a control would submit for an image: its parameters and count, and what that costs."""

    params: GenerationParams
    count: int
    scale: int = 1
    """Its images' pixels against the image's (4: twice the size)."""

    @property
    def cost(self) -> int:
        """GPU work, in the fair queue's units (see :attr:`engine.types.JobRequest.cost`)."""
        return JobRequest("plan", "plan", (0,) * self.count, self.params).cost

    @property
    def charge(self) -> int:
        """Images taken from the clicker's quota: the GPU work against new images of the image's size."""
        return images_charged(self.count, self.params.strength, self.scale)


def controls_costs(server: ServerSettings) -> str:
    """What each control costs in the server, against a new grid like the image's."""
    return (f"Charged to whoever clicks, by GPU work. **Vary (subtle)**: a grid as large as the image's, at "
            f"{server.vary_subtle_strength:.0%} of its GPU work and of its images' quota (4 images: "
            f"{images_charged(4, server.vary_subtle_strength)}). **Vary (strong)** and **Remix**: the same at "
            f"{server.vary_strong_strength:.0%} (4 images: {images_charged(4, server.vary_strong_strength)}). "
            f"**Upscale 2×**: one image, 4× its pixels at {server.upscale_strength:.0%} of the steps "
            f"({4 * server.upscale_strength:.1f}× one image's GPU work: "
            f"{images_charged(1, server.upscale_strength, 4)} of your quota).")  # fmt: skip


class Variations:
    """Submits the controls' jobs through the :class:`~bot.services.Services` (holds no state of its own)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def plan(self, job: JobView, control: Control, strength: float | None = None) -> Plan:
        """What ``control`` makes of an image of ``job``: a variation is a grid of as many images as the job had
        at the server's strength (or ``strength``); an upscale is one image at twice the size."""
        server = self.services.server_settings(job.guild_id)
        if control is Control.UPSCALE:
            params = replace(job.params, width=job.params.width * 2, height=job.params.height * 2,
                             strength=server.upscale_strength)  # fmt: skip
            return Plan(params, 1, scale=4)
        chosen = getattr(server, f"{control}_strength") if strength is None else strength
        return Plan(replace(job.params, strength=chosen), len(job.seeds))

    def costs(self, job: JobView) -> str:
        """Each control's cost for an image of ``job``, one line, against a new grid like it."""
        new = JobRequest("new", "new", job.seeds, replace(job.params, strength=1.0)).cost
        parts = []
        for control in Control:
            plan = self.plan(job, control)
            parts.append(f"{control.label}: {plan.count} image{'s' * (plan.count > 1)} for {plan.charge} of your "
                         f"quota, {plan.cost / new:.0%} of the GPU work of the original grid")  # fmt: skip
        return "Costs (charged to whoever clicks): " + " · ".join(parts) + "."

    async def source(self, guild_id: int, job_id: int, index: int) -> tuple[JobView, GeneratedImage]:
        """The server's done job and its image ``index``; refuses when the images are no longer kept, or hidden for
        review (flagged enough, or by the safety check) or acted on by the moderators."""
        dreams = self.services.dreams
        job = await dreams.job(guild_id, job_id)
        images = await dreams.images(guild_id, job_id) if job.state is JobState.DONE else ()
        if not images:
            hours = self.services.settings.scheduler.image_retention_hours
            raise Refusal(f"The images of job #{job.number} are no longer kept: images are kept for {hours:g} hours "
                          "after they are posted. Re-roll the job to make new ones.")  # fmt: skip
        if index >= len(images):
            raise Refusal(f"Job #{job.number} has {len(images)} images.")
        review = None if job.result_message_id is None else await self.services.flags.item_for_message(
            guild_id, job.result_message_id)  # fmt: skip
        if review is not None and (review.state == "actioned" or (review.state == "open" and review.hidden)):
            raise Refusal(f"The images of job #{job.number} were "
                          + (f"{review.resolution} by the moderators." if review.resolution else
                             "hidden for the moderators to review; try again once they have cleared them."))
        return job, images[index]

    async def make(self, guild_id: int, job_id: int, index: int, control: Control, member: Member, key: str, *,
                   age_restricted: bool = False, strength: float | None = None, prompt: str | None = None,
                   negative: str | None = None) -> tuple[Admission, JobView]:  # fmt: skip
        """Submit ``control`` of the image as ``member``'s job (charged to them), with a new ``prompt`` and
        ``negative`` prompt for a remix; checked by the prompt filter as ``/dream`` is. Returns the admission
        and the image's job."""
        job, image = await self.source(guild_id, job_id, index)
        plan = self.plan(job, control, strength)
        limits = self.services.engine.limits.with_start_image()
        if plan.params.width > limits.max_width or plan.params.height > limits.max_height:
            raise Refusal(f"{control.label} of a {job.params.width}×{job.params.height} image would be "
                          f"{plan.params.width}×{plan.params.height}; the largest this bot makes from an image is "
                          f"{limits.max_width}×{limits.max_height}.")  # fmt: skip
        # An upscale keeps the image's seed: the refinement keeps to the image's own noise.
        seeds = (image.seed,) if control is Control.UPSCALE else random_seeds(plan.count)
        start = await asyncio.to_thread(resized, image.png, plan.params.width, plan.params.height)
        request = DreamRequest(
            member=member, guild_id=guild_id, prompt=job.prompt if prompt is None else prompt, seeds=seeds,
            idempotency_key=key, params=plan.params,
            negative_prompt=job.negative_prompt if negative is None else negative, channel_id=job.channel_id,
            init_image=start, charge=plan.charge, upscale=control is Control.UPSCALE,
        )
        return await self.services.dream(request, age_restricted=age_restricted), job
