"""The moderation audit log: every moderator, admin and system action, per server, append-only.

The database refuses updates and deletes (except of a server the bot has
left, once its retention has passed), so this module only adds and reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiosqlite

from moderation.storage import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderator (or system) action in one server."""

    id: int
    guild_id: int
    at: float
    moderator_id: int | None
    """None: the bot itself."""
    action: str
    item_id: int | None
    member_id: int | None
    detail: str


async def write_audit(conn: aiosqlite.Connection, guild_id: int, at: float, moderator_id: int | None, action: str,
                      item_id: int | None, member_id: int | None, detail: str) -> None:  # fmt: skip
    """Add an entry inside the caller's transaction, so the action and its record commit together."""
    await conn.execute(
        "INSERT INTO moderation_audit (guild_id, at, moderator_id, action, item_id, member_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (guild_id, at, moderator_id, action, item_id, member_id, detail.strip()),
    )


class AuditLog:
    """Reading and adding a server's audit entries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, guild_id: int, moderator_id: int | None, action: str, *, item_id: int | None = None,
                     member_id: int | None = None, detail: str = "", now: float | None = None) -> None:  # fmt: skip
        """Record an action taken outside the review queue (deleting an image, changing a setting…)."""
        async with self._db.transaction() as conn:
            await write_audit(conn, guild_id, time.time() if now is None else now, moderator_id, action, item_id,
                              member_id, detail)  # fmt: skip

    async def entries(self, guild_id: int, *, item_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """The server's newest entries, for one of its items or all."""
        async with self._db.conn.execute(
            "SELECT id, guild_id, at, moderator_id, action, item_id, member_id, detail FROM moderation_audit"
            " WHERE guild_id = ?1 AND (?2 IS NULL OR item_id = ?2) ORDER BY id DESC LIMIT ?3",
            (guild_id, item_id, limit),
        ) as cursor:
            return [AuditEntry(**dict(row)) for row in await cursor.fetchall()]
