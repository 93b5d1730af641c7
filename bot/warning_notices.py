"""Warnings on Discord: the moderators' notice of an automatic ban, the member's direct message after a review,
and ``/mod warnings``' list."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot import render
from bot.text import clip
from bot.warnings import WarningRecord, WarnOutcome, duration, warning_count
from moderation.flags import ReviewItem

log = logging.getLogger(__name__)

SOURCES = {"prompt": "blocked prompt", "image": "withheld image", "flag": "flagged image"}
"""How each source of warnings reads in the list."""


async def tell_moderators(bot: Any, outcome: WarnOutcome) -> None:
    """Tell the member's server's moderators' channel (if one is set) of an automatic ban."""
    guild_id = outcome.warning.guild_id
    channel_id = bot.services.server_settings(guild_id).moderators_channel_id
    if channel_id is None:
        return
    try:
        channel = bot.get_channel(channel_id) or await bot.fetch_channel(channel_id)
        if getattr(getattr(channel, "guild", None), "id", None) != guild_id:
            log.warning("the moderators' channel %s is not in server %s; no ban notice", channel_id, guild_id)
            return
        await channel.send(outcome.moderators_notice(), allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        log.error("could not tell the moderators' channel %s of an automatic ban: %s", channel_id, exc)


def moderator_line(outcome: WarnOutcome) -> str:
    """The warning an actioned review gave its author, for the moderator's reply."""
    member, rule = f"<@{outcome.warning.member_id}>", outcome.warned.escalation
    if outcome.banned:
        reached = warning_count(outcome.warned.counted)
        return f"{member} reached {reached}: banned from generating for {duration(rule.ban_hours)} by the bot."
    if outcome.already_banned:
        return f"{member} was given a warning."
    return (f"{member} now has {outcome.warned.counted} of {rule.warnings_to_ban} warnings within "
            f"{duration(rule.window_hours)}.")  # fmt: skip


async def direct_message(bot: Any, item: ReviewItem, outcome: WarnOutcome | None, note: str) -> str:
    """Direct-message a flagged image's author the moderator's warning and what it counts for; say whether it
    arrived."""
    guild = bot.get_guild(item.guild_id)
    where = f" in **{guild.name}**" if guild is not None else ""
    text = (
        f"⚠️ A moderator{where} reviewed an image you made (job #{item.job_id}) after members flagged it, "
        "and this is a warning: please keep your prompts within the server's rules."
        + (f"\nModerator's note: {note}" if note else "")
        + (f"\n{outcome.notice()}" if outcome is not None else "")
    )
    try:
        user = bot.get_user(item.author_id) or await bot.fetch_user(item.author_id)
        await user.send(text, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException:
        return f"<@{item.author_id}> could not be sent a direct message; warn them another way."
    return f"<@{item.author_id}> was warned by direct message."


def warnings_embed(name: str, record: WarningRecord) -> discord.Embed:
    """A member's warnings in a server, newest first, with what counts toward a ban and any ban in force."""
    rule = record.rule
    embed = discord.Embed(title=f"Warnings of {name}", colour=render.BLURPLE)
    lines = []
    for warning in record.warnings:
        line = (f"• #{warning.id} {render.relative(warning.created_at)} **{SOURCES[warning.source]}**: "
                f"{clip(warning.reason, 100)}")  # fmt: skip
        if warning.banned_until is not None:
            line += " → automatic ban"
        if warning.cleared_at is not None:
            line = f"~~{line}~~ cleared by <@{warning.cleared_by}>"
        lines.append(line)
    embed.description = clip("\n".join(lines), 4000) or "No warnings in this server."
    counting = (f"{record.counting} of {rule.warnings_to_ban} within {duration(rule.window_hours)} "
                f"(a ban lasts {duration(rule.ban_hours)})")  # fmt: skip
    embed.add_field(name="Counting toward a ban", value=counting, inline=False)
    if record.ban is not None:
        until = "until lifted" if record.ban.until is None else f"until {render.relative(record.ban.until)}"
        embed.add_field(name="Banned", value=f"{until}: {clip(record.ban.reason, 200) or 'no reason given'}",
                        inline=False)  # fmt: skip
    return embed
