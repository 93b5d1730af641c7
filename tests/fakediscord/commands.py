"""Application commands as Discord keeps them: bulk overwrites per scope (global or one guild).

A command keeps its id across overwrites while its name and type stay the same, and its
``version`` changes only when its definition does -- so a bot that compares before syncing
can be tested.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import CommandUnavailable, InvalidInteraction
from .limits import check_commands
from .model import FakeChannel, FakeMember, snowflake

Scope = int | None  # a guild id, or None for global commands
_SERVER_FIELDS = ("id", "application_id", "version", "guild_id")
# Fields Discord always returns, filled in when a definition leaves them out.
_DEFAULTS = {"type": 1, "description": "", "nsfw": False, "default_member_permissions": None}


class CommandStore:
    """The commands an application has registered, and the history of its syncs."""

    def __init__(self, application_id: int) -> None:
        self.application_id = application_id
        self._commands: dict[Scope, list[dict[str, Any]]] = {}
        self._ids: dict[tuple[Scope, str, int], int] = {}
        self.syncs: list[tuple[Scope, list[dict[str, Any]]]] = []  # every bulk overwrite, as sent

    def overwrite(self, scope: Scope, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PUT .../commands: validate, replace the scope's commands, return them with ids."""
        check_commands(sent)
        self.syncs.append((scope, copy.deepcopy(sent)))
        previous = {(c["name"], c["type"]): c for c in self._commands.get(scope, [])}
        stored = []
        for definition in sent:
            command = {**_DEFAULTS, **copy.deepcopy(definition)}
            key = (scope, command["name"], command["type"])
            command["id"] = str(self._ids.setdefault(key, snowflake()))
            command["application_id"] = str(self.application_id)
            if scope is not None:
                command["guild_id"] = str(scope)
            if command.get("default_member_permissions") is not None:
                command["default_member_permissions"] = str(command["default_member_permissions"])
            old = previous.get((command["name"], command["type"]))
            unchanged = old is not None and definition_of(old) == definition_of(command)
            command["version"] = old["version"] if unchanged else str(snowflake())
            stored.append(command)
        self._commands[scope] = stored
        return copy.deepcopy(stored)

    def list(self, scope: Scope) -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get(scope, []))

    def find(self, guild_id: int | None, name: str, type: int) -> dict[str, Any]:
        """The command a member would pick: the guild's own first, then global."""
        for scope in (guild_id, None) if guild_id is not None else (None,):
            for command in self._commands.get(scope, []):
                if command["name"] == name and command["type"] == type:
                    return command
        known = [c["name"] for scope in (guild_id, None) for c in self._commands.get(scope, []) if c["type"] == type]
        raise InvalidInteraction(f"no command {name!r} of type {type} has been synced; synced: {known}")


def definition_of(command: dict[str, Any]) -> dict[str, Any]:
    """A command without the fields the server adds (id, version...), for comparison."""
    return {k: v for k, v in command.items() if k not in _SERVER_FIELDS}


def check_visible(command: dict[str, Any], member: FakeMember, channel: FakeChannel) -> None:
    """Discord hides a command from members lacking its ``default_member_permissions``."""
    required = command.get("default_member_permissions")
    if required is None or command["name"] in member.guild.opened_commands:
        return
    have = member.permissions_in(channel)
    needed = int(required)
    if have.administrator or (needed != 0 and have.value & needed == needed):
        return
    raise CommandUnavailable(
        f"{member.name} cannot use {command['name']!r}: it needs permissions {needed:#x}, "
        f"{member.name} has {have.value:#x} in #{channel.name}"
    )
