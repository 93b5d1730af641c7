"""Sync application commands only when their definitions changed since the last sync.

Discord rate-limits command registration, and a bulk overwrite on every start
is wasteful; this keeps a digest of the definitions last synced to each scope
(global, or one guild) in the database and syncs a scope only when its digest
differs, or when Discord no longer holds the same command names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import discord
from discord import app_commands

from bot.db import Database

log = logging.getLogger(__name__)


def digest(payload: list[dict[str, Any]]) -> str:
    """A stable fingerprint of a scope's command definitions."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def sync_commands(tree: app_commands.CommandTree, db: Database, guild_ids: tuple[int, ...]) -> list[str]:
    """Sync the tree to ``guild_ids`` (each gets every command) or globally; return the scopes synced.

    With guilds configured the global scope is synced empty, so members never
    see a command twice after a switch from global commands.
    """
    if guild_ids:
        for guild_id in guild_ids:
            tree.copy_global_to(guild=discord.Object(guild_id))
        tree.clear_commands(guild=None)
    synced = []
    for guild in [*(discord.Object(guild_id) for guild_id in guild_ids), None]:
        payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
        scope = "global" if guild is None else str(guild.id)
        if await _unchanged(tree, db, scope, guild, payload):
            continue
        await tree.sync(guild=guild)
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO command_syncs (scope, digest, synced_at) VALUES (?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET digest = excluded.digest, synced_at = excluded.synced_at",
                (scope, digest(payload), time.time()),
            )
        log.info("synced %d commands to %s", len(payload), scope)
        synced.append(scope)
    return synced


async def _unchanged(
    tree: app_commands.CommandTree,
    db: Database,
    scope: str,
    guild: discord.Object | None,
    payload: list[dict[str, Any]],
) -> bool:
    async with db.conn.execute("SELECT digest FROM command_syncs WHERE scope = ?", (scope,)) as cursor:
        row = await cursor.fetchone()
    if row is None or row["digest"] != digest(payload):
        return False
    remote = await tree.fetch_commands(guild=guild)
    return sorted((c.name, c.type.value) for c in remote) == sorted((c["name"], c.get("type", 1)) for c in payload)
