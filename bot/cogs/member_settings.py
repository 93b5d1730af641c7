"""``/settings show|set|reset``: a member's own defaults for ``/dream`` in this server, answered privately.

What a member sets is used by every ``/dream`` of theirs here unless that
``/dream`` gives the option itself (see :mod:`bot.dream_options`). Stored per
member per server (:mod:`bot.preferences`); ``/admin forget`` deletes them.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.access import member_of
from bot.aspect import ASPECTS
from bot.cogs.dream import DEFAULT_COUNT
from bot.preferences import PREFERENCE_NAMES, Preferences
from bot.refusal import Refusal
from bot.replies import defer, whisper
from bot.scheduler.modes import MODES
from bot.server import server_id
from bot.styles import NO_STYLE, unknown_style
from bot.text import clip
from engine.pnginfo import SAMPLER_LABELS
from engine.types import SAMPLERS, GenerationParams


def _choices(values: tuple[str, ...] | list[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=value, value=value) for value in values]


def preferences_embed(prefs: Preferences, defaults: dict[str, str], modes: str) -> discord.Embed:
    """The member's settings, each with the default it replaces, and what each mode costs."""
    embed = discord.Embed(title="Your /dream defaults in this server", colour=render.BLURPLE)
    given = prefs.given()
    for name in PREFERENCE_NAMES:
        value = given.get(name)
        shown = f"**{clip(str(value), 200)}**" if value is not None else f"{defaults.get(name, 'none')} *(default)*"
        embed.add_field(name=name, value=shown)
    embed.add_field(name="Modes", value=modes, inline=False)
    embed.set_footer(text="An option given to /dream wins over these; /settings reset puts them back.")
    return embed


class MemberSettings(commands.GroupCog, group_name="settings", group_description="Your own defaults for /dream"):
    """A member's ``/dream`` defaults in the server."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.services = bot.services
        super().__init__()

    @app_commands.guild_only()
    @app_commands.command(name="show", description="Your /dream defaults here, and what each mode costs")
    async def show(self, interaction: discord.Interaction) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        await whisper(interaction, embed=await self._embed(interaction, guild_id))

    @app_commands.guild_only()
    @app_commands.command(name="set", description="Set some of your /dream defaults here")
    @app_commands.describe(
        aspect="Width to height (replaces a default width and height)", width="Width in pixels, a multiple of 8",
        height="Height in pixels, a multiple of 8", steps="Denoising steps", sampler="The sampler",
        guidance="How closely to follow the prompt", count="How many images", negative="Your usual negative prompt",
        style="A style applied to your prompts (none: no style)", mode="fast (charged) or relax (free, slower)",
    )  # fmt: skip
    @app_commands.choices(
        aspect=_choices(tuple(ASPECTS)), mode=_choices(MODES),
        sampler=[app_commands.Choice(name=SAMPLER_LABELS[name], value=name) for name in SAMPLERS],
    )  # fmt: skip
    async def set_defaults(
        self, interaction: discord.Interaction, aspect: str | None = None, width: int | None = None,
        height: int | None = None, steps: int | None = None, sampler: str | None = None,
        guidance: float | None = None, count: int | None = None, negative: str | None = None,
        style: str | None = None, mode: str | None = None,
    ) -> None:  # fmt: skip
        guild_id = server_id(interaction)
        changes = {"aspect": aspect, "width": width, "height": height, "steps": steps, "sampler": sampler,
                   "guidance": guidance, "count": count, "negative": negative, "style": style, "mode": mode}
        if all(value is None for value in changes.values()):
            raise Refusal("Give at least one option to set; `/settings show` lists yours.")
        if style is not None and style != NO_STYLE:
            styles = await self.services.styles.styles(guild_id)
            if style not in styles:
                raise unknown_style(style, styles)
        await defer(interaction)
        await self.services.preferences.change(guild_id, interaction.user.id, changes, self.services.engine.limits)
        await whisper(interaction, "Saved. Your `/dream` uses these unless you give the option:",
                      embed=await self._embed(interaction, guild_id))  # fmt: skip

    @app_commands.guild_only()
    @app_commands.command(name="reset", description="Put one of your /dream defaults (or all) back")
    @app_commands.describe(option="The one to put back (default: all of them)")
    @app_commands.choices(option=_choices(list(PREFERENCE_NAMES)))
    async def reset(self, interaction: discord.Interaction, option: str | None = None) -> None:
        guild_id = server_id(interaction)
        await defer(interaction)
        await self.services.preferences.reset(guild_id, interaction.user.id, option)
        what = f"`{option}` is" if option else "All your defaults are"
        embed = await self._embed(interaction, guild_id)
        await whisper(interaction, f"{what} back to the server's default.", embed=embed)

    @set_defaults.autocomplete("style")
    async def _styles(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = [NO_STYLE, *await self.services.styles.styles(server_id(interaction))]
        return _choices([name for name in names if current.lower() in name][:25])

    async def _embed(self, interaction: discord.Interaction, guild_id: int) -> discord.Embed:
        status = self.services.dreams.quota_status(guild_id, member_of(interaction.user))
        params = GenerationParams()
        sampler = self.services.settings.engine.default_sampler
        defaults = {"width": str(params.width), "height": str(params.height), "steps": str(params.steps),
                    "guidance": f"{params.guidance:g}", "sampler": SAMPLER_LABELS.get(sampler, sampler),
                    "count": str(min(DEFAULT_COUNT, status.limits.max_images)), "mode": "fast"}  # fmt: skip
        prefs = await self.services.preferences.get(guild_id, interaction.user.id)
        return preferences_embed(prefs, defaults, render.modes_text(status.relax, status.relax_jobs))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(MemberSettings(bot))
