"""Who is asking, and what they may do: the operator, a server's admins and moderators, and served servers.

Two levels of power. The *operator* (``discord.owner_ids``, else the
application's owners) controls what every server shares: the GPU, the global
multiplier, the config, which servers are served. A server's *admins*
(Administrator there, or one of that server's admin roles) and *moderators*
(Manage Messages, one of its moderator roles, or admin) act on that server
only. Every check runs at use, against the server the interaction comes from;
roles are compared by id, never by name. Discord hides ``/mod`` and ``/admin``
by default permissions, but server admins can change that, so nothing relies
on it.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord
from discord import app_commands

from bot.scheduler.models import Member

DM_REFUSAL = "🔒 dreamqueue works only in servers: use this in a channel of a server the bot is in."
DM_QUOTA = "Quotas are kept per server: use `/quota` in a server the bot is in to see yours there."


class NotAllowed(app_commands.CheckFailure):
    """The user may not do this here (checked at run time, whatever Discord showed)."""


class RoleSettings(Protocol):
    """A server's role ids that grant powers (config defaults, or the server's own settings)."""

    @property
    def admin_role_ids(self) -> tuple[int, ...]: ...

    @property
    def moderator_role_ids(self) -> tuple[int, ...]: ...


def member_of(user: discord.User | discord.Member) -> Member:
    """The scheduler's member: id, and the roles that decide the tier (none in DMs)."""
    roles = getattr(user, "roles", [])
    return Member(user.id, tuple(role.id for role in roles))


def _in_server(user: discord.User | discord.Member, guild_id: int | None) -> discord.Member | None:
    """``user`` as a member of the server ``guild_id`` (None in DMs or for another server's member)."""
    if guild_id is None or not isinstance(user, discord.Member) or user.guild.id != guild_id:
        return None
    return user


def is_admin(user: discord.User | discord.Member, guild_id: int | None, roles: RoleSettings) -> bool:
    """Administrator in server ``guild_id``, or one of its admin roles."""
    member = _in_server(user, guild_id)
    if member is None:
        return False
    return member.guild_permissions.administrator or any(role.id in roles.admin_role_ids for role in member.roles)


def is_moderator(user: discord.User | discord.Member, guild_id: int | None, roles: RoleSettings) -> bool:
    """Manage Messages in server ``guild_id``, one of its moderator roles, or an admin there."""
    member = _in_server(user, guild_id)
    if member is None:
        return False
    if is_admin(member, guild_id, roles) or member.guild_permissions.manage_messages:
        return True
    return any(role.id in roles.moderator_role_ids for role in member.roles)


def _services(interaction: discord.Interaction) -> Any:
    return interaction.client.services  # type: ignore[attr-defined]


def check_served(interaction: discord.Interaction) -> None:
    """Refuse DMs (``/quota`` says to use a server) and servers the bot does not serve."""
    services = _services(interaction)
    if interaction.guild_id is None:
        command = interaction.type is discord.InteractionType.application_command
        raise NotAllowed(DM_QUOTA if command and (interaction.data or {}).get("name") == "quota" else DM_REFUSAL)
    discord_settings = services.settings.discord
    if not discord_settings.serves(interaction.guild_id):
        raise NotAllowed(
            f"🔒 dreamqueue does not serve this server. To ask for it, contact {discord_settings.operator_contact}."
        )


def require_operator(interaction: discord.Interaction) -> None:
    """Raise :class:`NotAllowed` unless the user is the bot's operator."""
    if interaction.user.id not in _services(interaction).operator_ids:
        raise NotAllowed("🔒 Only the bot's operator can do this: it changes what every server shares.")


def moderates_here(interaction: discord.Interaction) -> bool:
    """Whether the user moderates the server the interaction comes from."""
    roles = _services(interaction).server_settings(interaction.guild_id)
    return is_moderator(interaction.user, interaction.guild_id, roles)


def require_moderator(interaction: discord.Interaction) -> None:
    """Raise :class:`NotAllowed` unless the member moderates the server the interaction comes from."""
    if not moderates_here(interaction):
        raise NotAllowed("🔒 Only this server's moderators can do this.")


def require_admin(interaction: discord.Interaction) -> None:
    """Raise :class:`NotAllowed` unless the member administers the server the interaction comes from."""
    roles = _services(interaction).server_settings(interaction.guild_id)
    if not is_admin(interaction.user, interaction.guild_id, roles):
        raise NotAllowed("🔒 Only this server's bot admins can do this.")


def require_for_command(interaction: discord.Interaction) -> None:
    """The admin check, or the operator check for commands marked ``extras={"operator": True}``."""
    command = interaction.command
    if command is not None and command.extras.get("operator"):
        require_operator(interaction)
    else:
        require_admin(interaction)


class ServedTree(app_commands.CommandTree):
    """The command tree: every command, context menu and autocomplete first passes :func:`check_served`."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        check_served(interaction)
        return True
