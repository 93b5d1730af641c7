"""Who is asking: the scheduler's view of a Discord member, and the moderator and admin checks.

Discord hides ``/mod`` and ``/admin`` from members without Manage Messages or
Administrator by default, but server admins can change that per command; the
roles in config are checked again on every use.
"""

from __future__ import annotations

import discord

from bot.errors import NotAllowed
from bot.scheduler.models import Member
from bot.settings import DiscordSettings


def member_of(user: discord.User | discord.Member) -> Member:
    """The scheduler's member: id, and the roles that decide the tier (none in DMs)."""
    roles = getattr(user, "roles", [])
    return Member(user.id, tuple(role.id for role in roles), tuple(role.name for role in roles))


def _role_ids(user: discord.User | discord.Member) -> set[int]:
    return {role.id for role in getattr(user, "roles", [])}


def _permissions(user: discord.User | discord.Member) -> discord.Permissions:
    return getattr(user, "guild_permissions", discord.Permissions.none())


def is_admin(user: discord.User | discord.Member, settings: DiscordSettings) -> bool:
    """An admin has one of ``admin_role_ids``, or Administrator when no admin roles are configured."""
    if settings.admin_role_ids:
        return bool(_role_ids(user) & set(settings.admin_role_ids))
    return _permissions(user).administrator


def is_moderator(user: discord.User | discord.Member, settings: DiscordSettings) -> bool:
    """A moderator has one of ``moderator_role_ids`` (or Manage Messages when none are configured), or is an admin."""
    if is_admin(user, settings):
        return True
    if settings.moderator_role_ids:
        return bool(_role_ids(user) & set(settings.moderator_role_ids))
    return _permissions(user).manage_messages


def _settings(interaction: discord.Interaction) -> DiscordSettings:
    return interaction.client.services.settings.discord  # type: ignore[attr-defined]


def require_moderator(interaction: discord.Interaction) -> None:
    """Raise :class:`NotAllowed` unless the member may moderate."""
    if not is_moderator(interaction.user, _settings(interaction)):
        raise NotAllowed("🔒 Only moderators can do this.")


def require_admin(interaction: discord.Interaction) -> None:
    """Raise :class:`NotAllowed` unless the member is a bot admin."""
    if not is_admin(interaction.user, _settings(interaction)):
        raise NotAllowed("🔒 Only bot admins can do this.")


async def moderator_check(interaction: discord.Interaction) -> bool:
    """``app_commands`` check form of :func:`require_moderator`."""
    require_moderator(interaction)
    return True


async def admin_check(interaction: discord.Interaction) -> bool:
    """``app_commands`` check form of :func:`require_admin`."""
    require_admin(interaction)
    return True

