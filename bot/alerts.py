"""Where each review item's alert was posted in the moderators' channel."""

from __future__ import annotations

from bot.db import Database


class AlertLog:
    """The alert message of each review item (one per item)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, item_id: int, channel_id: int, message_id: int) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO review_alerts (item_id, channel_id, message_id) VALUES (?, ?, ?)",
                (item_id, channel_id, message_id),
            )

    async def find(self, item_id: int) -> tuple[int, int] | None:
        """``(channel_id, message_id)`` of the item's alert, if one was posted."""
        async with self._db.conn.execute(
            "SELECT channel_id, message_id FROM review_alerts WHERE item_id = ?", (item_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (row["channel_id"], row["message_id"])
