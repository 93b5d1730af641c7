"""``/styles list|add|remove``: the styles ``/dream style:`` offers here; a server's admins add and remove their own.

The config's styles are every server's; a server's own are its admins' and
audited in its audit log (:mod:`bot.styles`). Everyone may list them.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.access import require_admin
from bot.replies import defer, whisper
from bot.server import server_id
from bot.styles import MAX_TEMPLATE_CHARS, PLACEHOLDER, Style
from bot.text import clip


def styles_embed(styles: dict[str, Style]) -> discord.Embed:
    """Every style here, the config's then the server's own, each with its template."""
    embed = discord.Embed(title="Styles for /dream", colour=render.BLURPLE)
    for own in (False, True):
        lines = [f"**{style.name}**: `{clip(style.prompt, 120)}`" + (f" (negative: `{clip(style.negative, 60)}`)"
                 if style.negative else "") for style in styles.values() if style.own is own]  # fmt: skip
        embed.add_field(name="This server's own" if own else "Everywhere (the bot's config)",
                        value=render.fitted(lines) if lines else "none", inline=False)  # fmt: skip
    return embed


class Styles(commands.GroupCog, group_name="styles", group_description="Named styles for /dream"):
    """The server's styles: listed for everyone, changed by its admins."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.services = bot.services
        super().__init__()

    @app_commands.guild_only()
    @app_commands.command(name="list", description="The styles /dream style: offers here")
    async def list_styles(self, interaction: discord.Interaction) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        await whisper(interaction, embed=styles_embed(await self.services.styles.styles(guild_id)))

    @app_commands.guild_only()
    @app_commands.command(name="add", description="Add a style of this server's own (admins)")
    @app_commands.describe(
        name="Lowercase letters, digits, - and _", prompt=f"The template, with {PLACEHOLDER} where the prompt goes",
        negative="Added to the member's negative prompt",
    )  # fmt: skip
    async def add(self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 32],
                  prompt: app_commands.Range[str, 1, MAX_TEMPLATE_CHARS],
                  negative: app_commands.Range[str, 1, MAX_TEMPLATE_CHARS] = "") -> None:  # fmt: skip
        guild_id = server_id(interaction)
        require_admin(interaction)
        await defer(interaction)
        style = await self.services.add_style(guild_id, name, prompt, negative, interaction.user.id)
        await whisper(interaction, f"Style `{style.name}` added: `/dream style:{style.name}` draws "
                                   f"`{clip(style.prompt, 200)}`.")  # fmt: skip

    @app_commands.guild_only()
    @app_commands.command(name="remove", description="Remove one of this server's own styles (admins)")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        guild_id = server_id(interaction)
        require_admin(interaction)
        await defer(interaction)
        await self.services.styles.remove(guild_id, name, interaction.user.id)
        await whisper(interaction, f"Style `{name}` removed; members who had it as their default are told when "
                                   "they next `/dream`.")  # fmt: skip

    @remove.autocomplete("name")
    async def _own(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        styles = await self.services.styles.styles(server_id(interaction))
        return [app_commands.Choice(name=name, value=name) for name, style in styles.items()
                if style.own and current.lower() in name][:25]  # fmt: skip


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Styles(bot))
