"""``/admin settings``: a server's own settings, shown with where each comes from, and changed live.

Roles and channels are chosen with Discord's options and stored by id; one of
another server is refused. ``set`` replaces a value; with ``action: add`` or
``remove`` it changes one item of a list (roles, channels, filter
categories). Changes are stored, audited and survive restarts
(:mod:`bot.guild_settings`).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot import render
from bot.access import require_admin
from bot.guild_settings import ServerSettings
from bot.refusal import Refusal
from bot.replies import defer, whisper
from bot.setting_kinds import NUMBER_KINDS, SCORE_RANGE, SETTING_KINDS, shown
from moderation.warning_settings import WARNINGS_TO_BAN_RANGE

KEY_CHOICES = [app_commands.Choice(name=f"{key} ({kind})", value=key) for key, kind in SETTING_KINDS.items()]
ACTIONS = [app_commands.Choice(name=name, value=name) for name in ("set", "add", "remove")]


def settings_embed(server: ServerSettings, safety_checker: str) -> discord.Embed:
    """The server's settings and where each comes from, and whether generated images are checked at all."""
    embed = discord.Embed(title="This server's settings", colour=render.BLURPLE)
    for key, value in server.values().items():
        source = "set by this server" if key in server.overridden else "config default"
        embed.add_field(name=key, value=f"{now_shown(key, value)}\n*{source}*")
    tiers = "\n".join(f"{tier}: {shown('roles', roles)}" for tier, roles in server.tier_roles.items())
    embed.add_field(name="tier roles (`/admin tier role`)", value=tiers or "none besides the config's")
    checked = f"checked by {safety_checker}" if safety_checker else "⚠️ **not checked**: the engine has no classifier"
    embed.add_field(name="Image safety check", value=f"Images are {checked}.", inline=False)
    return embed


def now_shown(key: str, value: Any) -> str:
    """A setting's value, saying what an empty list of dream channels means."""
    if key == "dream_channel_ids" and not value:
        return "none: `/dream` works in every channel"
    return shown(SETTING_KINDS[key], value)


def own_role_id(interaction: discord.Interaction, role: discord.Role) -> int:
    """The id of a role chosen in a Discord option, refused if it is not one of this server's."""
    guild = interaction.guild
    if guild is None or guild.get_role(role.id) is None:
        raise Refusal("That role is not in this server; choose one of this server's roles.")
    return role.id


def chosen(interaction: discord.Interaction, key: str, role: discord.Role | None,
           channel: discord.TextChannel | None, value: float | None, categories: str | None) -> Any:  # fmt: skip
    """The value the admin gave for ``key``, checked to be of this server; refuse a missing or foreign one."""
    kind = SETTING_KINDS.get(key)
    if kind is None:  # offered as the admin types, so any text can come
        raise Refusal(f"`{key}` is not a server setting; those are: {', '.join(SETTING_KINDS)}.")
    guild = interaction.guild
    assert guild is not None  # served servers only
    if kind in NUMBER_KINDS:
        if value is None:
            raise Refusal(f"Give `value` for {key}: {NUMBER_KINDS[kind]}.")
        return value
    if kind == "categories":
        if not categories:
            raise Refusal(f"Give `categories` for {key}: filter category names, separated by commas.")
        return tuple(name.strip() for name in categories.split(",") if name.strip())
    if kind == "roles":
        if role is None:
            raise Refusal(f"Give `role` for {key}: a role of this server.")
        return (own_role_id(interaction, role),)
    if channel is None:
        raise Refusal(f"Give `channel` for {key}: a text channel of this server.")
    if guild.get_channel(channel.id) is None:
        raise Refusal("That channel is not in this server; choose one of this server's text channels.")
    return (channel.id,) if kind == "channels" else channel.id


class ServerSettingsGroup(app_commands.Group):
    """``/admin settings show|set|reset``, for the server's admins."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        require_admin(interaction)
        return True

    @app_commands.command(name="show", description="This server's settings, and where each comes from")
    async def show(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        services: Any = interaction.client.services  # type: ignore[attr-defined]
        server = services.server_settings(interaction.guild_id)
        await whisper(interaction, embed=settings_embed(server, services.safety_checker))

    @app_commands.command(name="set", description="Give this server its own value of a setting, or add to a list")
    @app_commands.describe(
        action="set (the default) replaces the value; add and remove change one item of a list",
        role="For role settings", channel="For channel settings",
        value=f"For numbers: scores {SCORE_RANGE[0]:g}-{SCORE_RANGE[1]:g}, warnings_to_ban "
              f"{WARNINGS_TO_BAN_RANGE[0]}-{WARNINGS_TO_BAN_RANGE[1]}, hours more than 0, image_ bands 0-1",
        categories="For filter_off, nsfw_prompt_categories: category names, comma-separated",
    )  # fmt: skip
    @app_commands.choices(action=ACTIONS)
    async def set_value(self, interaction: discord.Interaction, key: str, action: str = "set",
                        role: discord.Role | None = None, channel: discord.TextChannel | None = None,
                        value: float | None = None, categories: str | None = None) -> None:  # fmt: skip
        given = chosen(interaction, key, role, channel, value, categories)
        await defer(interaction)
        store = interaction.client.services.guild_settings  # type: ignore[attr-defined]
        if action == "set":
            server = await store.set(interaction.guild_id, key, given, interaction.user.id)
        else:
            server = await store.change_list(interaction.guild_id, key, given, interaction.user.id, add=action == "add")
        await whisper(interaction, f"`{key}` is now {now_shown(key, server.values()[key])} here.")

    @app_commands.command(name="reset", description="Put one of this server's settings back to the config default")
    async def reset(self, interaction: discord.Interaction, key: str) -> None:
        await defer(interaction)
        services: Any = interaction.client.services  # type: ignore[attr-defined]
        server = await services.guild_settings.set(interaction.guild_id, key, None, interaction.user.id)
        value = now_shown(key, server.values()[key])
        await whisper(interaction, f"`{key}` is back to the config default: {value}.")

    async def _keys(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The settings whose key contains what the admin typed (offered as they type, not listed in the command:
        a list of every key would take ``/admin`` past Discord's 4,000 characters a command)."""
        return [choice for choice in KEY_CHOICES if current.lower() in choice.value][:25]

    reset.autocomplete("key")(_keys)
    set_value.autocomplete("key")(_keys)
