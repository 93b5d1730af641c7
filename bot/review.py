"""Reviewing flagged images: the review message, the moderators' review buttons, and carrying out decisions.

An image flagged over the alert score (:mod:`bot.flagging`) is shown to the
moderators with review buttons (on the alert, and on ``/mod review``'s
one-at-a-time view); a button resolves the item and carries out the decision
on Discord: show a hidden image again, delete the image, warn the author by
direct message, ban them from the bot.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

from bot import render
from bot.access import check_served, require_moderator
from bot.errors import Guarded, report
from bot.moderating import ReviewAction
from bot.refusal import Refusal
from bot.replies import defer, whisper
from bot.server import server_id
from bot.text import clip
from bot.warning_notices import direct_message, moderator_line
from moderation.flags import Flag, ReviewItem

log = logging.getLogger(__name__)

REVIEW_ACTIONS: dict[str, tuple[str, str, discord.ButtonStyle]] = {
    "dismiss": ("Dismiss", "✅", discord.ButtonStyle.success),
    "remove": ("Remove image", "🗑️", discord.ButtonStyle.secondary),
    "warn": ("Warn", "⚠️", discord.ButtonStyle.secondary),
    "ban": ("Ban", "⛔", discord.ButtonStyle.danger),
}
BAN_CHOICES: dict[str, float | None] = {
    "1 hour": 1,
    "1 day": 24,
    "1 week": 24 * 7,
    "30 days": 24 * 30,
    "Until lifted": None,
}
"""Ban durations a moderator picks from, in hours (None: until lifted)."""


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def review_embed(item: ReviewItem, flags: list[Flag]) -> discord.Embed:
    """A flagged image for moderators: prompt, author, score, every flag with its reason and note."""
    colour = render.RED if item.state == "open" else render.GREY
    embed = discord.Embed(title=f"🚩 Review #{item.id}", description=clip(item.prompt, 3000), colour=colour)
    embed.add_field(name="Author", value=f"<@{item.author_id}>")
    embed.add_field(name="Score", value=f"{item.score:g} from {item.flag_count} flag{'s' * (item.flag_count != 1)}")
    link = jump_url(item.guild_id, item.channel_id, item.message_id)
    embed.add_field(name="Image", value=f"[job #{item.job_id}]({link})")
    lines = [
        f"• **{flag.reason}** by <@{flag.flagger_id}>" + (f": {flag.note}" if flag.note else "") for flag in flags[:15]
    ]
    embed.add_field(name="Flags", value=clip("\n".join(lines) or "none", 1024), inline=False)
    if item.hidden:
        embed.add_field(name="Hidden", value="The image was hidden automatically.", inline=False)
    if item.state != "open":
        outcome = item.resolution or item.state
        embed.add_field(name="Resolved", value=f"**{outcome}** by <@{item.resolved_by}>", inline=False)
    return embed


def review_view(item: ReviewItem, *, queue: bool) -> discord.ui.View:
    """Dismiss / Remove image / Warn / Ban for an open item; ``queue`` shows the next item after acting."""
    view = discord.ui.View(timeout=None)
    for action in REVIEW_ACTIONS:
        view.add_item(ReviewButton(item.id, action, queue))
    return view


async def image_file(bot: Any, item: ReviewItem) -> discord.File | None:
    """The flagged image, spoilered: from its message, else from the stored images (None when both are gone)."""
    message = await fetch_message(bot, item.channel_id, item.message_id)
    if message is not None and message.attachments:
        return await message.attachments[0].to_file(spoiler=True)
    if item.job_id is None:
        return None
    try:
        job, images = await bot.services.finished_job(item.guild_id, item.job_id)
    except Refusal:
        return None
    upload = await asyncio.to_thread(render.grid_upload, job, images, bot.services.model, render.DEFAULT_UPLOAD_LIMIT)
    return upload.file(spoiler=True)


async def fetch_message(bot: Any, channel_id: int | None, message_id: int) -> discord.Message | None:
    """A message by id, or None if it, its channel or our access to it is gone."""
    if channel_id is None:
        return None
    try:
        channel = bot.get_channel(channel_id) or await bot.fetch_channel(channel_id)
        return await channel.fetch_message(message_id)
    except (discord.NotFound, discord.Forbidden):
        return None


async def review_message(bot: Any, item: ReviewItem, *, queue: bool) -> dict[str, Any]:
    """The keyword arguments of a message showing ``item`` for review (embed, image, buttons)."""
    embed = review_embed(item, await bot.services.flags.flags(item.guild_id, item.id))
    file = await image_file(bot, item)
    if file is None:
        embed.add_field(name="Image", value="The image is no longer available.", inline=False)
    return {
        "embed": embed,
        "attachments": [file] if file else [],
        "view": review_view(item, queue=queue) if item.state == "open" else None,
    }


async def restore_image(bot: Any, item: ReviewItem) -> str:
    """Show a hidden image again (re-posted from the stored images); say how it went."""
    message = await fetch_message(bot, item.channel_id, item.message_id)
    if message is None or not message.embeds or item.job_id is None:
        return "The hidden image's message is gone."
    job, images = await bot.services.finished_job(item.guild_id, item.job_id)
    limit = message.guild.filesize_limit if message.guild else render.DEFAULT_UPLOAD_LIMIT
    upload = await asyncio.to_thread(render.grid_upload, job, images, bot.services.model, limit)
    embed = message.embeds[0]
    for index in reversed(range(len(embed.fields))):
        if embed.fields[index].name == "Hidden":
            embed.remove_field(index)
    embed.set_image(url=f"attachment://{upload.filename}")
    await message.edit(embed=embed, attachments=[upload.file()])
    return "The image is shown again."


class ReviewButton(
    Guarded,
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"dq:review:(?P<item>\d+):(?P<action>dismiss|remove|warn|ban)(?P<queue>:q)?",
):
    """A moderator's decision on a review item; in ``/mod review`` the next item follows."""

    def __init__(self, item_id: int, action: str, queue: bool) -> None:
        label, emoji, style = REVIEW_ACTIONS[action]
        super().__init__(
            discord.ui.Button(
                label=label, emoji=emoji, style=style, custom_id=f"dq:review:{item_id}:{action}{':q' if queue else ''}"
            )
        )
        self.item_id = item_id
        self.action = action
        self.queue = queue

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> ReviewButton:
        return cls(int(match["item"]), match["action"], bool(match["queue"]))

    async def run(self, interaction: discord.Interaction) -> None:
        require_moderator(interaction)
        if self.action == "ban":
            await interaction.response.send_modal(BanForm(self.item_id, self.queue))
            return
        await defer(interaction, thinking=False)
        await resolve(interaction, self.item_id, self.action, self.queue)


class BanForm(discord.ui.Modal, title="Ban from the bot"):
    """How long, and why (shown to the member when they try to generate)."""

    def __init__(self, item_id: int, queue: bool) -> None:
        super().__init__(timeout=15 * 60)
        self.item_id = item_id
        self.queue = queue
        self.duration: discord.ui.Select[Any] = discord.ui.Select(
            options=[discord.SelectOption(label=label, value=label, default=label == "1 day") for label in BAN_CHOICES]
        )
        self.reason: discord.ui.TextInput[Any] = discord.ui.TextInput(required=False, max_length=200)
        self.add_item(discord.ui.Label(text="For how long?", component=self.duration))
        self.add_item(discord.ui.Label(text="Reason (the member sees it)", component=self.reason))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        check_served(interaction)
        require_moderator(interaction)
        await defer(interaction, thinking=False)
        hours = BAN_CHOICES[self.duration.values[0]] if self.duration.values else BAN_CHOICES["1 day"]
        await resolve(interaction, self.item_id, "ban", self.queue, ban_hours=hours, note=self.reason.value)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await report(interaction, error)


async def resolve(
    interaction: discord.Interaction, item_id: int, action: str, queue: bool, *, ban_hours: float | None = None,
    note: str = "",
) -> None:  # fmt: skip
    """Record the decision, carry it out on Discord, then update the review message (or show the next item)."""
    bot: Any = interaction.client
    result = await bot.services.moderating.review(
        server_id(interaction), item_id, interaction.user.id, action, ban_hours=ban_hours, note=note
    )
    done = " ".join(await carry_out(bot, result, action, note))
    if not queue:
        flags = await bot.services.flags.flags(result.item.guild_id, result.item.id)
        await interaction.edit_original_response(embed=review_embed(result.item, flags), view=None)
        await whisper(interaction, done)
        return
    await close_alert(bot, result.item)
    page = await bot.services.flags.review_queue(result.item.guild_id, per_page=1)
    if page.items:
        await interaction.edit_original_response(content=done, **await review_message(bot, page.items[0], queue=True))
    else:
        empty = f"{done} The review queue is empty. 🎉"
        await interaction.edit_original_response(content=empty, embed=None, attachments=[], view=None)


async def close_alert(bot: Any, item: ReviewItem) -> None:
    """Show a resolved item's alert in the moderators' channel as resolved, without its buttons."""
    where = await bot.services.alerts.find(item.guild_id, item.id)
    if where is None:
        return
    embed = review_embed(item, await bot.services.flags.flags(item.guild_id, item.id))
    try:
        await bot.get_partial_messageable(where[0]).get_partial_message(where[1]).edit(embed=embed, view=None)
    except discord.HTTPException as exc:
        log.info("could not update the alert of review #%s: %s", item.id, exc)


async def carry_out(bot: Any, result: ReviewAction, action: str, note: str) -> list[str]:
    """Do on Discord what the decision says (show, delete, warn; tell the author of an automatic ban); return what
    was done, line by line."""
    item = result.item
    done = [f"Review #{item.id}: **{item.resolution or item.state}**."]
    if action == "dismiss" and item.hidden:
        done.append(await restore_image(bot, item))
    if action in ("remove", "ban"):
        message = await fetch_message(bot, item.channel_id, item.message_id)
        try:
            if message is not None:
                await message.delete()
                done.append("The image was deleted.")
        except discord.HTTPException as exc:
            done.append(f"The image could not be deleted ({exc.text or exc.status}).")
    if action == "warn" or (result.warning is not None and result.warning.banned):
        done.append(await direct_message(bot, item, result.warning, note))
    if action == "ban":
        until = "until lifted" if result.ban_until is None else f"until {render.relative(result.ban_until)}"
        done.append(f"<@{item.author_id}> is banned from generating {until}.")
    if result.warning is not None:
        done.append(moderator_line(result.warning))
    return done


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (ReviewButton,)
