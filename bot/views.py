"""The buttons on dream messages, as dynamic items: the job id lives in the custom id, so they work after a restart.

Each button's :meth:`run` is a cog callback in small: validate, defer, one
service call, render. Errors go through :func:`bot.errors.report` like a
command's (discord.py would only log them).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord

from bot import render
from bot.access import member_of, moderates_here
from bot.controls import CONTROLS, control_items, control_view
from bot.errors import Guarded
from bot.flagging import FlagForm
from bot.image_policy import decide
from bot.refusal import Refusal
from bot.replies import defer, whisper
from bot.scheduler.models import JobState, JobView
from bot.screening import is_nsfw
from bot.server import server_id
from bot.variations import Variations


class JobButton(Guarded):
    """A button about one job: ``dq:<action>:<job id>``."""

    action: str
    label: str
    emoji: str | None = None
    style: discord.ButtonStyle = discord.ButtonStyle.secondary

    def __init__(self, job_id: int) -> None:
        super().__init__(  # type: ignore[call-arg]
            discord.ui.Button(
                label=self.label, emoji=self.emoji, style=self.style, custom_id=f"dq:{self.action}:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(int(match["job"]))


class CancelButton(JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"dq:cancel:(?P<job>\d+)"):
    """Cancel a queued or running job (its author, or a moderator)."""

    action, label, emoji = "cancel", "Cancel", "✖️"

    async def run(self, interaction: discord.Interaction) -> None:
        services = interaction.client.services  # type: ignore[attr-defined]
        guild_id = server_id(interaction)
        await defer(interaction, thinking=False)
        moderator = moderates_here(interaction)
        job = await services.dreams.cancel(guild_id, self.job_id, interaction.user.id, moderator=moderator)
        if job.state is JobState.CANCELLED:
            await whisper(interaction, f"Cancelled job #{job.number}; its images were given back to the quota.")
        else:
            await whisper(interaction, f"Job #{job.number} had already ended ({job.state}).")


class RerollButton(JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"dq:reroll:(?P<job>\d+)"):
    """The same prompt and settings with new seeds, as the clicker's job (charged to them)."""

    action, label, emoji, style = "reroll", "Re-roll", "🎲", discord.ButtonStyle.primary

    async def run(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        guild_id = server_id(interaction)
        async with bot.delivery.admitting(interaction):
            admission = await bot.services.reroll(guild_id, self.job_id, member_of(interaction.user),
                                                  str(interaction.id), age_restricted=is_nsfw(interaction.channel))
            bot.delivery.queued(interaction, admission)


class FlagButton(JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"dq:flag:(?P<job>\d+)"):
    """Flag the image for the moderators: opens the flag form."""

    action, label, emoji = "flag", "Flag", "🚩"

    async def run(self, interaction: discord.Interaction) -> None:
        assert interaction.message is not None
        await interaction.response.send_modal(FlagForm(interaction.client, self.job_id, interaction.message))


class DeleteButton(JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"dq:delete:(?P<job>\d+)"):
    """Delete the result message (its author, or a moderator: audited)."""

    action, label, emoji, style = "delete", "Delete", "🗑️", discord.ButtonStyle.danger

    async def run(self, interaction: discord.Interaction) -> None:
        services = interaction.client.services  # type: ignore[attr-defined]
        assert interaction.message is not None
        guild_id = server_id(interaction)
        await defer(interaction, thinking=False)
        moderator = moderates_here(interaction)
        job = await services.moderating.delete_result(guild_id, self.job_id, interaction.message.id,
                                                      interaction.user.id, moderator=moderator)
        await interaction.message.delete()
        await whisper(interaction, f"Deleted the images of job #{job.number}.")


class ImageButton(Guarded, discord.ui.DynamicItem[discord.ui.Button], template=r"dq:image:(?P<job>\d+):(?P<index>\d)"):
    """Post one image of the grid alone, at full size, with its controls and what each costs."""

    def __init__(self, job_id: int, index: int) -> None:
        super().__init__(
            discord.ui.Button(label=str(index + 1), emoji="🔍", custom_id=f"dq:image:{job_id}:{index}")
        )
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> ImageButton:
        return cls(int(match["job"]), int(match["index"]))

    async def run(self, interaction: discord.Interaction) -> None:
        services = interaction.client.services  # type: ignore[attr-defined]
        guild_id = server_id(interaction)
        await defer(interaction, public=True)
        job, images = await services.finished_job(guild_id, self.job_id)
        if self.index >= len(images):
            raise Refusal(f"Job #{job.number} has {len(images)} images.")
        image = images[self.index]
        upload = await asyncio.to_thread(render.single_upload, job, image, self.index, interaction.filesize_limit)
        bands = services.server_settings(guild_id).image_bands(is_nsfw(interaction.channel))
        await interaction.followup.send(
            f"Image {self.index + 1} of job #{job.number} by <@{job.member_id}> · seed `{image.seed}`"
            + (f"\n{upload.note}" if upload.note else "") + f"\n{Variations(services).costs(job)}",
            file=upload.file(spoiler=decide((image,), bands) is not None),  # as the safety check shows its grid
            view=control_view(job.job_id, self.index),
            allowed_mentions=discord.AllowedMentions.none(),
        )


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    CancelButton,
    RerollButton,
    FlagButton,
    DeleteButton,
    ImageButton,
    *CONTROLS,
)
"""Every dynamic item of this module and the image controls (the review module adds its own)."""


def status_view(job: JobView) -> discord.ui.View:
    """The buttons under a queued or running job."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job.job_id))
    return view


def result_view(job: JobView) -> discord.ui.View:
    """The buttons under a finished grid: re-roll, flag, delete, then one per image (or, for one image, its
    controls)."""
    view = discord.ui.View(timeout=None)
    for item in (RerollButton(job.job_id), FlagButton(job.job_id), DeleteButton(job.job_id)):
        view.add_item(item)
    if len(job.seeds) > 1:
        for index in range(len(job.seeds)):
            button = ImageButton(job.job_id, index)
            button.item.row = 1 + index // 5
            view.add_item(button)
    else:
        for item in control_items(job.job_id, 0, row=1):
            view.add_item(item)
    return view


def job_id_of(message: discord.Message) -> int | None:
    """The job a dream message shows, read from its buttons (None for other messages)."""
    for row in message.components:
        for component in getattr(row, "children", ()):
            match = re.fullmatch(r"dq:(?:flag|reroll|delete|cancel):(\d+)", getattr(component, "custom_id", "") or "")
            if match:
                return int(match[1])
    return None
