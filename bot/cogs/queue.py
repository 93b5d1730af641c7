"""``/queue``, ``/cancel`` and ``/quota``: a member's own jobs and limits, answered privately."""

from __future__ import annotations

import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.access import member_of
from bot.replies import defer, whisper
from bot.server import server_id
from bot.text import clip
from bot.variations import controls_costs


class Queue(commands.Cog):
    """Members' view of their place in the queue and their quota."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.services = bot.services

    @app_commands.guild_only()
    @app_commands.command(name="queue", description="Your jobs in the queue, and how long the queue is")
    async def queue(self, interaction: discord.Interaction) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        jobs, summary = await self.services.queue_view(guild_id, interaction.user.id)
        now = time.time()
        embed = discord.Embed(title="The queue", colour=render.BLURPLE)
        lines = []
        for job, placement in jobs:
            where = "running" if placement.position == 0 else f"#{placement.position}"
            eta = f", ready {render.relative(now + placement.eta_seconds)}" if placement.eta_seconds is not None else ""
            lines.append(f"**Job #{job.number}**: {where}{eta}: {clip(job.prompt, 60)}")
        mine = "\n".join(lines) or "You have no jobs waiting. Try `/dream`."
        embed.add_field(name="Your jobs", value=mine, inline=False)
        everyone = (
            f"{summary.queued_jobs} jobs ({summary.queued_images} images) from {summary.members_waiting} "
            f"members waiting, {len(summary.running_jobs)} running"
        )
        if summary.all_queued_jobs != summary.queued_jobs:
            everyone += f" ({summary.all_queued_jobs} jobs waiting in all servers)"
        if summary.queued_jobs or summary.running_jobs:
            everyone += f"; all done {render.relative(now + summary.drain_seconds)}"
        if summary.paused:
            everyone = f"⏸️ Paused by the admins.\n{everyone}"
        embed.add_field(name="This server", value=everyone, inline=False)
        await whisper(interaction, embed=embed)

    @app_commands.guild_only()
    @app_commands.command(name="cancel", description="Cancel your queued or running jobs")
    @app_commands.describe(job="The job number (default: all your jobs)")
    async def cancel(self, interaction: discord.Interaction, job: app_commands.Range[int, 1] | None = None) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        ended = await self.services.cancel_mine(guild_id, interaction.user.id, job)
        lines = [
            f"Job #{view.number}: {'cancelled' if view.state == 'cancelled' else f'already {view.state}'}"
            for view in ended
        ]
        await whisper(interaction, "\n".join(lines) + "\nCancelled jobs' images were given back to your quota.")

    @cancel.autocomplete("job")
    async def _my_jobs(self, interaction: discord.Interaction, current: int | None) -> list[app_commands.Choice[int]]:
        jobs = self.services.dreams.active_jobs(server_id(interaction), interaction.user.id)
        return [app_commands.Choice(name=f"Job #{job.number}: {clip(job.prompt, 80)}", value=job.number)
                for job in jobs][:25]

    @app_commands.guild_only()
    @app_commands.command(name="quota", description="Your tier, and how many images you have left")
    async def quota(self, interaction: discord.Interaction) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        status = self.services.dreams.quota_status(guild_id, member_of(interaction.user))
        embed = render.quota_embed(status, time.time())
        embed.add_field(name="Image controls", value=controls_costs(self.services.server_settings(guild_id)),
                        inline=False)  # fmt: skip
        await whisper(interaction, embed=embed)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Queue(bot))
