"""``/mod``: the review queue, a member's history and warnings, the audit log, bans, and cancelling anyone's job.

Discord shows the group to members with Manage Messages by default; every use
is checked again against ``discord.moderator_role_ids``. Every action lands in
an audit log (the flag store's for reviews and warnings, the scheduler's for
bans and for cancelling someone else's job).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.access import member_of, require_moderator
from bot.replies import defer, whisper
from bot.review import review_message
from bot.server import server_id
from bot.text import clip
from bot.warning_notices import warnings_embed

AUDIT_SHOWN = 15
"""Audit entries ``/mod audit`` shows, newest first."""
BAN_HOURS = [
    app_commands.Choice(name="1 hour", value=1.0),
    app_commands.Choice(name="1 day", value=24.0),
    app_commands.Choice(name="1 week", value=168.0),
    app_commands.Choice(name="30 days", value=720.0),
    app_commands.Choice(name="until lifted", value=0.0),
]


@app_commands.guild_only()
@app_commands.default_permissions(manage_messages=True)
class Mod(commands.GroupCog, group_name="mod", group_description="Moderator tools"):
    """Moderator commands."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.services = bot.services

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        require_moderator(interaction)
        return True

    @app_commands.command(name="review", description="Review flagged images, highest score first")
    async def review(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        page = await self.services.flags.review_queue(interaction.guild_id, per_page=1)
        if not page.items:
            await whisper(interaction, "No flagged images are waiting for review. 🎉")
            return
        message = await review_message(self.bot, page.items[0], queue=True)
        files = message.pop("attachments")
        await whisper(interaction, f"{page.total} open item{'s' * (page.total != 1)}.", files=files, **message)

    @app_commands.command(name="history", description="A member's jobs, blocked prompts, flagged images and flags")
    @app_commands.describe(member="Whose history")
    async def history(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await defer(interaction)
        record = await self.services.moderating.member_history(server_id(interaction), member_of(member))
        history, blocked, status = record.flags, record.prompts, record.quota
        embed = discord.Embed(title=f"History of {member.display_name}", colour=render.BLURPLE)
        embed.add_field(name="Tier", value=f"{status.tier}{' (banned)' if status.banned else ''}")
        embed.add_field(name="In the queue", value=str(status.queued_jobs))
        jobs = "\n".join(render.job_line(job) for job in record.jobs)
        embed.add_field(name="Recent jobs", value=clip(jobs, 1024) or "none", inline=False)
        embed.add_field(
            name="Flagged images",
            value=f"{history.open} open, {history.dismissed} dismissed, {history.actioned} actioned",
            inline=False,
        )
        embed.add_field(
            name="As a flagger",
            value=f"{history.flags_given} flags: {history.flags_upheld} upheld, {history.flags_rejected} rejected "
            f"(next flag weighs {history.flag_weight:g})",
            inline=False,
        )
        items = [
            f"• #{item.id} {item.resolution or item.state}, score {item.score:g}: {clip(item.prompt, 60)}"
            for item in history.items[:5]
        ]
        embed.add_field(name="Recent flagged images", value="\n".join(items) or "none", inline=False)
        prompts = [
            f"• {render.relative(entry.created_at)} **{entry.action}** {entry.category} ({entry.rule})"
            f"{' in the **negative** prompt' if entry.part == 'negative' else ''}: {clip(entry.prompt, 60)}"
            for entry in blocked[:5]
        ]
        embed.add_field(name="Recent blocked or noted prompts", value="\n".join(prompts) or "none", inline=False)
        await whisper(interaction, embed=embed)

    @app_commands.command(name="audit", description="This server's latest moderation actions")
    async def audit(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        entries = await self.services.audit.entries(interaction.guild_id, limit=AUDIT_SHOWN)
        lines = [
            f"• {render.relative(entry.at)} **{entry.action}** by "
            + (f"<@{entry.moderator_id}>" if entry.moderator_id is not None else "the bot")
            + (f" on <@{entry.member_id}>" if entry.member_id is not None else "")
            + (f" (review #{entry.item_id})" if entry.item_id is not None else "")
            + (f": {clip(entry.detail, 120)}" if entry.detail else "")
            for entry in entries
        ]
        embed = discord.Embed(title="Moderation audit log", colour=render.BLURPLE,
                              description=clip("\n".join(lines), 4000) or "No actions recorded in this server yet.")
        await whisper(interaction, embed=embed)

    @app_commands.command(name="ban", description="Ban a member from generating images")
    @app_commands.describe(member="Who", duration="For how long", reason="Shown to the member when they try")
    @app_commands.choices(duration=BAN_HOURS)
    async def ban(
        self, interaction: discord.Interaction, member: discord.Member, duration: float,
        reason: app_commands.Range[str, 1, 200] = "",
    ) -> None:  # fmt: skip
        await defer(interaction)
        until = await self.services.moderating.ban(server_id(interaction), interaction.user.id, member.id,
                                                   duration or None, reason)
        how_long = "until lifted" if until is None else f"until {render.relative(until)}"
        await whisper(
            interaction, f"{member.mention} is banned from generating {how_long}; their queued jobs were cancelled."
        )

    @app_commands.command(name="unban", description="Lift a member's ban")
    async def unban(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await defer(interaction)
        lifted = await self.services.dreams.unban(interaction.user.id, server_id(interaction), member.id)
        text = "may generate again" if lifted else "was not banned"
        await whisper(interaction, f"{member.mention} {text}.")

    @app_commands.command(name="warnings", description="A member's warnings in this server")
    @app_commands.describe(member="Whose warnings")
    async def warnings(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await defer(interaction)
        record = await self.services.warnings.record(server_id(interaction), member.id)
        await whisper(interaction, embed=warnings_embed(member.display_name, record))

    @app_commands.command(name="unwarn", description="Clear one of a member's warnings (listed by /mod warnings)")
    @app_commands.describe(warning="The warning's number", note="Why (kept in the audit log)")
    async def unwarn(self, interaction: discord.Interaction, warning: app_commands.Range[int, 1],
                     note: app_commands.Range[str, 1, 200] = "") -> None:  # fmt: skip
        await defer(interaction)
        cleared = await self.services.warnings.clear(server_id(interaction), warning, interaction.user.id, note)
        stays = " If the automatic ban it brought is still on, `/mod unban` lifts it." if cleared.banned_until else ""
        await whisper(interaction, f"Warning #{cleared.id} of <@{cleared.member_id}> is cleared: it no longer "
                                   f"counts toward a ban.{stays}")  # fmt: skip

    @app_commands.command(name="cancel", description="Cancel anyone's queued or running job")
    @app_commands.describe(job="The job number (shown under each dream)")
    async def cancel(self, interaction: discord.Interaction, job: app_commands.Range[int, 1]) -> None:
        await defer(interaction)
        [view] = await self.services.cancel(server_id(interaction), [job], interaction.user.id, moderator=True)
        done = "cancelled" if view.state == "cancelled" else f"already {view.state}"
        await whisper(interaction, f"Job #{view.number} by <@{view.member_id}>: {done}.")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Mod(bot))
