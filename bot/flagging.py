"""Flagging images: the flag form, and what a flag sets off on Discord (the moderators' alert, hiding the image).

A flag goes through :class:`FlagForm` to the flag store; when it takes an image
over the alert score the moderators' channel gets the image with review
buttons (:mod:`bot.review`), and over the hide score the image is hidden as
configured.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.access import check_served
from bot.errors import report
from bot.replies import defer, whisper
from bot.review import review_message
from bot.server import server_id
from moderation.flags import ReviewItem

log = logging.getLogger(__name__)


async def alert_moderators(bot: Any, item: ReviewItem) -> None:
    """Tell the item's server's moderators' channel about an item that reached the alert score (if one is set)."""
    channel_id = bot.services.server_settings(item.guild_id).moderators_channel_id
    if channel_id is None:
        return
    try:
        channel = bot.get_channel(channel_id) or await bot.fetch_channel(channel_id)
        if getattr(getattr(channel, "guild", None), "id", None) != item.guild_id:
            log.warning("the moderators' channel %s is not in server %s; no alert", channel_id, item.guild_id)
            return
        message = await review_message(bot, item, queue=False)
        files = message.pop("attachments")
        sent = await channel.send(files=files, **message)
        await bot.services.alerts.record(item.guild_id, item.id, channel_id, sent.id)
    except discord.HTTPException as exc:
        log.error("could not alert the moderators' channel %s about review #%s: %s", channel_id, item.id, exc)


async def hide_image(bot: Any, message: discord.Message) -> None:
    """Hide a flagged image until reviewed: behind a spoiler, or off the message, as configured."""
    embed = message.embeds[0] if message.embeds else discord.Embed()
    embed.set_image(url=None)
    embed.add_field(name="Hidden", value="Flagged by members; hidden until a moderator reviews it.", inline=False)
    files = []
    if bot.services.settings.discord.hide_flagged == "spoiler" and message.attachments:
        # An embed's image cannot be blurred: show the file as a spoilered attachment instead.
        files = [await message.attachments[0].to_file(spoiler=True)]
    try:
        await message.edit(embed=embed, attachments=files)
    except discord.HTTPException as exc:
        log.warning("could not hide flagged message %s: %s", message.id, exc)


class FlagForm(discord.ui.Modal, title="Flag this image"):
    """Reason (from config) and an optional note; opened by the Flag button and the Flag image menu."""

    def __init__(self, bot: Any, job_id: int, message: discord.Message) -> None:
        super().__init__(timeout=15 * 60)
        settings = bot.services.settings.moderation.flags
        self.job_id = job_id
        self.message = message
        self.reason: discord.ui.Select[Any] = discord.ui.Select(
            placeholder="Pick a reason",
            options=[
                discord.SelectOption(label=reason.replace("_", " ").capitalize(), value=reason)
                for reason in settings.reasons
            ],
        )
        self.note: discord.ui.TextInput[Any] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, required=False, max_length=settings.note_max_chars
        )
        self.add_item(discord.ui.Label(text="What is wrong with it?", component=self.reason))
        self.add_item(discord.ui.Label(text="Anything to add? (optional)", component=self.note))

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        check_served(interaction)
        return True

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        await defer(interaction)
        job, outcome = await bot.services.moderating.flag(
            server_id(interaction), self.job_id, self.message.id, interaction.user.id, self.reason.values[0],
            self.note.value,
        )
        if outcome.alert:
            await alert_moderators(bot, outcome.item)
        if outcome.hide:
            await hide_image(bot, self.message)
        if outcome.counted:
            await whisper(interaction, f"Thank you: the moderators will look at job #{job.number}.")
        else:
            await whisper(interaction, f"You have already flagged job #{job.number}; the moderators have it.")

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report(interaction, error)
