"""Carrying out the image safety check's decision on Discord, for the delivery of a finished job.

The decision comes from :mod:`bot.image_policy` (the server's bands, looser
in age-restricted channels if the server set them). A withheld job's grid is
never posted in its channel: the moderators' channel gets it behind a
spoiler, the member is told ephemerally (by direct message once the
interaction is gone) with the warning it earned them, and the job is counted
against its member and recorded as not to be delivered. A grid in the review
band is posted behind a spoiler and put in the review queue with an alert to
the moderators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord

from bot import render
from bot.flagging import alert_moderators
from bot.image_policy import Bands, ImageDecision, decide, describe, withheld_entry
from bot.scheduler.models import JobView
from bot.services import Services
from bot.text import clip
from engine.types import SafetyVerdict

log = logging.getLogger(__name__)

WITHHELD = "🛑 Your job #{number} is done, but the image was withheld by the safety check."
WITHHELD_REASON = "withheld by the image safety check"
"""Recorded as the job's reason for never being posted (a restart does not try again)."""
SPOILERED = "Behind a spoiler until a moderator reviews it (image safety check)."
NO_MENTIONS = discord.AllowedMentions.none()


class Screening:
    """The safety check's part in delivering a job's grid."""

    def __init__(self, bot: Any, services: Services) -> None:
        self.bot = bot
        self.services = services

    def bands(self, job: JobView) -> Bands:
        """The bands of the job's channel in its server."""
        channel = self.bot.get_channel(job.channel_id) if job.channel_id else None
        return self.services.server_settings(job.guild_id).image_bands(is_nsfw(channel))

    def decide(self, job: JobView) -> ImageDecision | None:
        """What to do with the job's grid in its channel; None: post it as it is."""
        return decide(job.images, self.bands(job))

    async def withhold(self, job: JobView, verdict: SafetyVerdict, interaction: discord.Interaction | None,
                       status_message_id: int | None) -> None:  # fmt: skip
        """Keep the job's grid from its channel: count it, show it to the moderators, tell the member.

        ``interaction`` is the job's, while its token lives; ``status_message_id`` its public status message.
        """
        # The warning is keyed by the job, and the audit entry written with it: a restart before the record
        # below delivers the job again, without a second warning, audit entry or moderators' post (the post
        # is lost if the bot dies between the warning and it; the audit entry keeps the decision).
        warning = await self.services.moderating.warn(job.guild_id, job.member_id,
                                                      f"image withheld (job #{job.number})", "image", job_id=job.job_id,
                                                      audit=withheld_entry(job, verdict, self.bands(job)))  # fmt: skip
        if not warning.warned.repeated:
            self.services.image_safety.count_withheld(job)
            await self._show_moderators(job, verdict)
        # Recorded before the member is told: a restart in between must not count and show it twice.
        await self.services.dreams.record_undeliverable(job.guild_id, job.job_id, WITHHELD_REASON)
        await self._tell_member(job, f"{WITHHELD.format(number=job.number)}\n{warning.notice()}", interaction,
                                status_message_id)  # fmt: skip

    async def review(self, job: JobView, message: discord.Message, verdict: SafetyVerdict) -> None:
        """Put a posted, spoilered grid in the review queue and alert the moderators."""
        item = await self.services.image_safety.hold_for_review(job, message.id, verdict)
        await alert_moderators(self.bot, item)

    async def _show_moderators(self, job: JobView, verdict: SafetyVerdict) -> None:
        """Post the withheld grid, spoilered, in the server's moderators' channel (if it has one)."""
        channel_id = self.services.server_settings(job.guild_id).moderators_channel_id
        if channel_id is None:
            log.info("job %s withheld; server %s has no moderators' channel to show it", job.job_id, job.guild_id)
            return
        embed = discord.Embed(title="🛑 Withheld by the image safety check", description=clip(job.prompt, 3000),
                              colour=render.RED)  # fmt: skip
        embed.add_field(name="Author", value=f"<@{job.member_id}>")
        embed.add_field(name="Job", value=f"#{job.number} in <#{job.channel_id}>")
        embed.add_field(name="Verdict", value=describe(verdict), inline=False)
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if getattr(getattr(channel, "guild", None), "id", None) != job.guild_id:
                log.warning("the moderators' channel %s is not in server %s", channel_id, job.guild_id)
                return
            limit = channel.guild.filesize_limit
            upload = await asyncio.to_thread(render.grid_upload, job, job.images, self.services.model, limit)
            await channel.send(embed=embed, file=upload.file(spoiler=True), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.error("could not show the moderators' channel %s withheld job %s: %s", channel_id, job.job_id, exc)

    async def _tell_member(self, job: JobView, text: str, interaction: discord.Interaction | None,
                           status_message_id: int | None) -> None:  # fmt: skip
        """Take the public status message down and tell the member only: ephemerally, else by direct message."""
        if interaction is not None:
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            try:
                await interaction.followup.send(text, ephemeral=True)
                return
            except discord.HTTPException as exc:
                log.info("job %s withheld; could not tell its member ephemerally: %s", job.job_id, exc)
        if status_message_id is not None and job.channel_id is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.bot.get_partial_messageable(job.channel_id).get_partial_message(status_message_id).delete()
        try:
            user = self.bot.get_user(job.member_id) or await self.bot.fetch_user(job.member_id)
            await user.send(text)
        except discord.HTTPException as exc:
            log.info("job %s withheld; its member could not be sent a direct message: %s", job.job_id, exc)


def is_nsfw(channel: object) -> bool:
    """Whether a channel (or a thread, by its parent) is age-restricted."""
    return isinstance(channel, discord.abc.GuildChannel | discord.Thread) and channel.is_nsfw()


def spoil(embed: discord.Embed) -> None:
    """A result embed for a grid posted behind a spoiler: an embed's image cannot be blurred, so it goes."""
    embed.set_image(url=None)
    embed.add_field(name="Hidden", value=SPOILERED, inline=False)
