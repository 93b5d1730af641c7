"""The fake server's world: users, guilds, roles, members and channels, and their Discord JSON.

Objects are plain Python; ``payload()`` methods render them the way Discord's API does, so the
real discord.py client parses them. Permissions are computed with Discord's own algorithm
(owner and Administrator get everything; @everyone, then roles, then channel overwrites).
"""

from __future__ import annotations

import datetime
import itertools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from .server import FakeDiscord

DISCORD_EPOCH_MS = 1420070400000
_increment = itertools.count()


def snowflake(at: datetime.datetime | None = None) -> int:
    """A new, unique snowflake id whose timestamp is ``at`` (default: now)."""
    ms = int(at.timestamp() * 1000) if at is not None else int(time.time() * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(_increment) % 4096)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class FakeUser:
    """A Discord account."""

    def __init__(self, name: str, *, bot: bool = False, id: int | None = None) -> None:
        self.id = id if id is not None else snowflake()
        self.name = name
        self.bot = bot

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }

    def __repr__(self) -> str:
        return f"<FakeUser {self.name} {self.id}>"


class FakeRole:
    """A guild role. The guild's @everyone role has the guild's id."""

    def __init__(
        self,
        guild: FakeGuild,
        name: str,
        permissions: discord.Permissions,
        *,
        position: int,
        id: int | None = None,
        bot_id: int | None = None,
        mentionable: bool = False,
    ) -> None:
        self.guild = guild
        self.id = id if id is not None else snowflake()
        self.name = name
        self.permissions = permissions
        self.position = position
        self.bot_id = bot_id
        self.mentionable = mentionable

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions.value),
            "managed": self.bot_id is not None,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data

    def __repr__(self) -> str:
        return f"<FakeRole {self.name} {self.id}>"


class FakeMember:
    """A user's membership of a guild, with roles."""

    def __init__(self, guild: FakeGuild, user: FakeUser, roles: list[FakeRole], nick: str | None = None) -> None:
        self.guild = guild
        self.user = user
        self.roles = roles
        self.nick = nick
        self.joined_at = utcnow()

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def mention(self) -> str:
        return self.user.mention

    def set_roles(self, roles: Sequence[FakeRole]) -> None:
        """Replace the member's roles; a connected bot gets GUILD_MEMBER_UPDATE."""
        self.roles = list(roles)
        self.guild._emit("GUILD_MEMBER_UPDATE", {"guild_id": str(self.guild.id), **self.payload()})

    def guild_permissions(self) -> discord.Permissions:
        if self.guild.owner_id == self.id:
            return discord.Permissions.all()
        value = self.guild.default_role.permissions.value
        for role in self.roles:
            value |= role.permissions.value
        if value & discord.Permissions(administrator=True).value:
            return discord.Permissions.all()
        return discord.Permissions(value)

    def permissions_in(self, channel: FakeChannel) -> discord.Permissions:
        """Discord's permission algorithm: base permissions, then the channel's overwrites."""
        base = self.guild_permissions()
        if base.administrator:
            return base
        value = base.value
        overwrites = channel.overwrites
        if self.guild.id in overwrites:
            allow, deny = overwrites[self.guild.id]
            value = (value & ~deny.value) | allow.value
        role_allow = role_deny = 0
        for role in self.roles:
            if role.id in overwrites:
                allow, deny = overwrites[role.id]
                role_allow |= allow.value
                role_deny |= deny.value
        value = (value & ~role_deny) | role_allow
        if self.id in overwrites:
            allow, deny = overwrites[self.id]
            value = (value & ~deny.value) | allow.value
        return discord.Permissions(value)

    def payload(self, *, channel: FakeChannel | None = None, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(role.id) for role in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if channel is not None:
            data["permissions"] = str(self.permissions_in(channel).value)
        return data

    def __repr__(self) -> str:
        return f"<FakeMember {self.name} of {self.guild.name}>"


class FakeChannel:
    """A guild text channel, or a DM channel when ``guild`` is None."""

    def __init__(
        self,
        guild: FakeGuild | None,
        name: str,
        *,
        type: discord.ChannelType = discord.ChannelType.text,
        position: int = 0,
        recipient: FakeUser | None = None,
        nsfw: bool = False,
    ) -> None:
        self.guild = guild
        self.id = snowflake()
        self.name = name
        self.type = type
        self.position = position
        self.recipient = recipient
        self.nsfw = nsfw
        """Age-restricted."""
        self.deleted = False
        # target id -> (allow, deny); the @everyone overwrite uses the guild id.
        self.overwrites: dict[int, tuple[discord.Permissions, discord.Permissions]] = {}

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def set_overwrite(
        self,
        target: FakeRole | FakeMember,
        *,
        allow: discord.Permissions | None = None,
        deny: discord.Permissions | None = None,
    ) -> None:
        """Set a permission overwrite for a role or member on this channel."""
        self.overwrites[target.id] = (allow or discord.Permissions.none(), deny or discord.Permissions.none())
        if self.guild is not None:
            self.guild._emit("CHANNEL_UPDATE", self.payload())

    def payload(self) -> dict[str, Any]:
        if self.guild is None:
            return {
                "id": str(self.id),
                "type": discord.ChannelType.private.value,
                "last_message_id": None,
                "recipients": [self.recipient.payload()] if self.recipient else [],
            }
        return {
            "id": str(self.id),
            "guild_id": str(self.guild.id),
            "type": self.type.value,
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": None,
            "nsfw": self.nsfw,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "permission_overwrites": [
                {
                    "id": str(target),
                    "type": 0 if target in self.guild.roles_by_id else 1,
                    "allow": str(allow.value),
                    "deny": str(deny.value),
                }
                for target, (allow, deny) in self.overwrites.items()
            ],
        }

    def __repr__(self) -> str:
        return f"<FakeChannel #{self.name} {self.id}>"


DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    add_reactions=True,
    use_external_emojis=True,
    manage_messages=True,
)


class FakeGuild:
    """A guild (server). Create with :meth:`FakeDiscord.add_guild`."""

    def __init__(
        self,
        fake: FakeDiscord,
        name: str,
        *,
        owner: FakeUser,
        bot_user: FakeUser,
        bot_permissions: discord.Permissions,
        everyone_permissions: discord.Permissions,
        filesize_limit: int,
        premium_tier: int,
    ) -> None:
        self._fake = fake
        self.id = snowflake()
        self.name = name
        self.owner_id = owner.id
        self.filesize_limit = filesize_limit
        self.premium_tier = premium_tier
        self.roles: list[FakeRole] = [FakeRole(self, "@everyone", everyone_permissions, position=0, id=self.id)]
        self.channels: list[FakeChannel] = []
        self.members: dict[int, FakeMember] = {}
        self.opened_commands: set[str] = set()
        """Commands this guild's admins opened to everyone (Integrations settings), whatever their default
        permissions say."""
        bot_role = FakeRole(self, bot_user.name, bot_permissions, position=1, bot_id=bot_user.id)
        self.roles.append(bot_role)
        self.me = self._add(FakeMember(self, bot_user, [bot_role]))
        self.owner = self._add(FakeMember(self, owner, []))

    @property
    def default_role(self) -> FakeRole:
        return self.roles[0]

    @property
    def roles_by_id(self) -> dict[int, FakeRole]:
        return {role.id: role for role in self.roles}

    def _add(self, member: FakeMember) -> FakeMember:
        self.members[member.id] = member
        return member

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        self._fake._emit(event, data)

    def add_role(
        self, name: str, permissions: discord.Permissions | None = None, *, mentionable: bool = False
    ) -> FakeRole:
        """Add a role (above the existing ones)."""
        role = FakeRole(
            self, name, permissions or discord.Permissions.none(), position=len(self.roles), mentionable=mentionable
        )
        self.roles.append(role)
        self._emit("GUILD_ROLE_CREATE", {"guild_id": str(self.id), "role": role.payload()})
        return role

    def add_member(self, name: str, *, roles: Sequence[FakeRole] = (), bot: bool = False) -> FakeMember:
        """Add a new user to the guild with these roles."""
        member = self._add(FakeMember(self, FakeUser(name, bot=bot), list(roles)))
        self._emit("GUILD_MEMBER_ADD", {"guild_id": str(self.id), **member.payload()})
        return member

    def join(self, user: FakeUser, *, roles: Sequence[FakeRole] = ()) -> FakeMember:
        """An existing user (a member of another guild) joins this guild with these roles."""
        member = self._add(FakeMember(self, user, list(roles)))
        self._emit("GUILD_MEMBER_ADD", {"guild_id": str(self.id), **member.payload()})
        return member

    def add_text_channel(self, name: str, *, nsfw: bool = False) -> FakeChannel:
        """Add a text channel (``nsfw``: age-restricted)."""
        channel = FakeChannel(self, name, position=len(self.channels), nsfw=nsfw)
        self.channels.append(channel)
        self._emit("CHANNEL_CREATE", channel.payload())
        return channel

    def payload(self) -> dict[str, Any]:
        """The full guild object sent in GUILD_CREATE."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "unavailable": False,
            "large": False,
            "lazy": True,
            "joined_at": iso(self.me.joined_at),
            "member_count": len(self.members),
            "roles": [role.payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "channels": [channel.payload() for channel in self.channels],
            "threads": [],
            "members": [member.payload() for member in self.members.values()],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def __repr__(self) -> str:
        return f"<FakeGuild {self.name} {self.id}>"
