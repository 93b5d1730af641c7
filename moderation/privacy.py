"""Deleting moderation data: one member's in one server (a privacy request), or a whole server's.

Each function runs inside the caller's transaction, so the deletion and its
audit entry commit together. The audit log keeps its entries about the member
(ids and actions, no prompts): it is the record of what moderators did.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

SERVER_TABLES = ("moderation_prompt_log", "moderation_flags", "moderation_items", "moderation_warnings",
                 "moderation_audit")
"""Every moderation table, each keyed by server; children before parents."""


@dataclass(frozen=True, slots=True)
class ForgottenModeration:
    """What forgetting one member in one server removed."""

    prompts: int
    """Their blocked or noted prompts."""
    items: int
    """Their flagged images (which carry their prompts)."""
    flags: int
    """Flags they gave (the images they flagged are rescored)."""


async def member_guilds(conn: aiosqlite.Connection, member_id: int) -> set[int]:
    """The servers holding moderation data about a member."""
    async with conn.execute(
        "SELECT guild_id FROM moderation_prompt_log WHERE member_id = ?1"
        " UNION SELECT guild_id FROM moderation_items WHERE author_id = ?1"
        " UNION SELECT guild_id FROM moderation_flags WHERE flagger_id = ?1",
        (member_id,),
    ) as cursor:
        return {guild_id for (guild_id,) in await cursor.fetchall()}


async def forget_member(conn: aiosqlite.Connection, guild_id: int, member_id: int, now: float) -> ForgottenModeration:
    """Delete a member's blocked prompts, flagged images and given flags in one server."""
    prompts = (await conn.execute(
        "DELETE FROM moderation_prompt_log WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
    )).rowcount  # fmt: skip
    async with conn.execute(
        "SELECT DISTINCT item_id FROM moderation_flags WHERE guild_id = ? AND flagger_id = ?", (guild_id, member_id)
    ) as cursor:
        flagged = [item_id for (item_id,) in await cursor.fetchall()]
    flags = (await conn.execute(
        "DELETE FROM moderation_flags WHERE guild_id = ? AND flagger_id = ?", (guild_id, member_id)
    )).rowcount  # fmt: skip
    await conn.executemany(
        "UPDATE moderation_items SET updated_at = ?1,"
        " score = (SELECT coalesce(sum(weight), 0) FROM moderation_flags WHERE guild_id = ?2 AND item_id = ?3),"
        " flag_count = (SELECT count(*) FROM moderation_flags WHERE guild_id = ?2 AND item_id = ?3)"
        " WHERE guild_id = ?2 AND id = ?3",
        [(now, guild_id, item_id) for item_id in flagged],
    )
    items = (await conn.execute(
        "DELETE FROM moderation_items WHERE guild_id = ? AND author_id = ?", (guild_id, member_id)
    )).rowcount  # fmt: skip
    return ForgottenModeration(prompts, items, flags)


async def forget_server(conn: aiosqlite.Connection, guild_id: int) -> int:
    """Delete every moderation row of a server the bot has left (the audit log allows it only then); return how
    many."""
    deleted = 0
    for table in SERVER_TABLES:
        deleted += (await conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))).rowcount
    return deleted
