"""What each member is owed and was given: grids posted, ends told, results that cannot be posted.

A done job is owed its grid until a message is recorded for it (or it is found
undeliverable); the message that shows a job is recorded too, so a restart
goes on editing it. A failed, cancelled or interrupted job is owed a notice until
its member was told. Each record is written once: a second attempt answers
False, so two posts of one grid are caught. A start reads what is still owed,
server by server, and posts or tells it.
"""

from __future__ import annotations

import aiosqlite

from bot.scheduler.journal import Journal
from bot.scheduler.rows import JOB_COLUMNS

_UNDELIVERED = (
    "(state = 'done' AND result_message_id IS NULL AND undeliverable IS NULL)"
    " OR (state IN ('failed', 'cancelled', 'interrupted') AND delivered_at IS NULL)"
)
"""Jobs whose member is still owed their grid or the news of how the job ended."""


class Deliveries:
    """The delivery columns of the journal's jobs, written and read through its connection."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def record_delivery(self, guild_id: int, job_id: int, message_id: int, at: float) -> bool:
        """Record the message that delivered a done job; False if a delivery was already recorded."""
        async with self.journal.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET result_message_id = ?, delivered_at = ?"
                " WHERE id = ? AND guild_id = ? AND state = 'done' AND result_message_id IS NULL",
                (message_id, at, job_id, guild_id),
            )
            return cursor.rowcount == 1

    async def record_told(self, guild_id: int, job_id: int, at: float) -> bool:
        """Record that the member of a job that ended without images was told; False if recorded already."""
        async with self.journal.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET delivered_at = ? WHERE id = ? AND guild_id = ?"
                " AND state IN ('failed', 'cancelled', 'interrupted') AND delivered_at IS NULL",
                (at, job_id, guild_id),
            )
            return cursor.rowcount == 1

    async def record_status_message(self, guild_id: int, job_id: int, message_id: int) -> None:
        """Record the message that shows a job (its command's reply), so a restart goes on editing it."""
        async with self.journal.transaction() as conn:
            await conn.execute("UPDATE jobs SET status_message_id = ? WHERE id = ? AND guild_id = ?",
                               (message_id, job_id, guild_id))  # fmt: skip

    async def record_undeliverable(self, guild_id: int, job_id: int, reason: str) -> bool:
        """Mark a done, undelivered job as impossible to deliver; False if it was delivered or marked already."""
        async with self.journal.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET undeliverable = ? WHERE id = ? AND guild_id = ? AND state = 'done'"
                " AND result_message_id IS NULL AND undeliverable IS NULL",
                (reason, job_id, guild_id),
            )
            return cursor.rowcount == 1

    async def servers_undelivered(self) -> list[int]:
        """The servers with jobs to post or tell (see :meth:`undelivered`); the only query of it across servers."""
        rows = await self.journal.fetchall(f"SELECT DISTINCT guild_id FROM jobs WHERE {_UNDELIVERED}")
        return [row[0] for row in rows]

    async def undelivered(self, guild_id: int) -> list[aiosqlite.Row]:
        """The server's done jobs whose grid was not posted, and ended ones whose member was not told."""
        return await self.journal.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND ({_UNDELIVERED}) ORDER BY id", (guild_id,)
        )
