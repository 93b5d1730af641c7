"""The **Flag image** message command: the same flag form as the Flag button, from the Apps menu."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.flagging import FlagForm
from bot.refusal import Refusal
from bot.views import job_id_of


class Flagging(commands.Cog):
    """Members flag images for the moderators."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        # Context menus cannot be cog methods in discord.py; this one is added to the tree with the cog.
        self.menu = app_commands.ContextMenu(name="Flag image", callback=self.flag_image)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def flag_image(self, interaction: discord.Interaction, message: discord.Message) -> None:
        job_id = job_id_of(message) if message.author.id == self.bot.user.id else None
        if job_id is None:
            raise Refusal(
                "Only images made with `/dream` can be flagged this way; report other messages to a moderator."
            )
        await interaction.response.send_modal(FlagForm(self.bot, job_id, message))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Flagging(bot))
