"""Where each review item's alert was posted in its server's moderators' channel."""

from __future__ import annotations

from bot.db import Database


class AlertLog:
    """The alert message of each review item (one per item), per server."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, guild_id: int, item_id: int, channel_id: int, message_id: int) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO review_alerts (guild_id, item_id, channel_id, message_id) VALUES (?, ?, ?, ?)",
                (guild_id, item_id, channel_id, message_id),
            )

    async def find(self, guild_id: int, item_id: int) -> tuple[int, int] | None:
        """``(channel_id, message_id)`` of the server's item's alert, if one was posted."""
        async with self._db.conn.execute(
            "SELECT channel_id, message_id FROM review_alerts WHERE guild_id = ? AND item_id = ?", (guild_id, item_id)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (row["channel_id"], row["message_id"])
