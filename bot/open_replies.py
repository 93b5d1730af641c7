"""Public placeholders of requests not admitted yet, kept in SQLite so a restart in between can answer them.

A ``/dream`` (or a button that makes a job) shows "thinking…" in the channel
before its job is admitted. If the bot stops in that moment, the placeholder
would wait until Discord gives up on it. :meth:`OpenReplies.holding` records
the interaction's reply token around the admission; the next start
(:meth:`OpenReplies.left`) finds what was left and the delivery answers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.db import Database

TOKEN_LIFETIME_S = 15 * 60
"""Discord's interaction tokens die after 15 minutes: older placeholders cannot be answered."""


@dataclass(frozen=True)
class OpenReply:
    """A placeholder left unanswered by a bot that stopped before its request's job was admitted or refused."""

    guild_id: int
    interaction_id: int
    application_id: int
    token: str
    created_at: float


class OpenReplies:
    """The ``open_replies`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def holding(self, reply: OpenReply) -> AsyncIterator[None]:
        """Keep ``reply`` on record while the block admits (or refuses) its job; a block cancelled by a stopping
        bot leaves it for the next start to answer."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO open_replies (guild_id, interaction_id, application_id, token, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (reply.guild_id, reply.interaction_id, reply.application_id, reply.token, reply.created_at),
            )
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._drop(reply)  # refused: the refusal answers the placeholder
            raise
        await self._drop(reply)

    async def _drop(self, reply: OpenReply) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM open_replies WHERE guild_id = ? AND interaction_id = ?",
                               (reply.guild_id, reply.interaction_id))  # fmt: skip

    async def left(self, before: float, now: float) -> list[OpenReply]:
        """Every server's placeholders recorded before ``before`` (by earlier runs) that can still be answered,
        oldest first; older ones, which nobody can answer now, are deleted. Each stays on record until
        :meth:`answered`, so a run that stops before answering leaves it to the next."""
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT DISTINCT guild_id FROM open_replies WHERE created_at < ?",
                                    (before,)) as cursor:  # fmt: skip
                guild_ids = [row[0] for row in await cursor.fetchall()]
            replies: list[OpenReply] = []
            for guild_id in guild_ids:
                await conn.execute("DELETE FROM open_replies WHERE guild_id = ? AND created_at <= ?",
                                   (guild_id, now - TOKEN_LIFETIME_S))  # fmt: skip
                async with conn.execute(
                    "SELECT guild_id, interaction_id, application_id, token, created_at FROM open_replies"
                    " WHERE guild_id = ? AND created_at < ? ORDER BY created_at",
                    (guild_id, before),
                ) as cursor:
                    replies += [OpenReply(*row) for row in await cursor.fetchall()]
        return replies

    async def answered(self, reply: OpenReply) -> None:
        """Take a placeholder of an earlier run off the record, once answered (or found unanswerable)."""
        await self._drop(reply)
