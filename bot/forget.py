"""Forgetting a member: in one server (``/admin forget``) or everywhere (``dreamqueue forget``), audited.

Their blocked prompts, their flagged images and the flags they gave are
deleted; their finished jobs keep their counts (quotas are charged from them)
but lose their prompts. Each server's deletion is recorded in that server's
audit log in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiosqlite

from bot.db import Database
from moderation.audit import write_audit
from moderation.privacy import ForgottenModeration, forget_member, member_guilds

ENDED_STATES = ("done", "failed", "cancelled", "interrupted")
"""Job states whose prompt is no longer needed to run the job."""


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a member removed in one server."""

    guild_id: int
    moderation: ForgottenModeration
    jobs: int
    """Jobs whose prompts were blanked."""

    def describe(self) -> str:
        found = self.moderation
        return (f"deleted {found.prompts} blocked prompt(s), {found.items} flagged image(s) and {found.flags} "
                f"flag(s); blanked the prompts of {self.jobs} job(s)")  # fmt: skip


async def blank_job_prompts(conn: aiosqlite.Connection, guild_id: int, member_id: int | None) -> int:
    """Blank the prompts of the server's ended jobs, one member's (or everyone's, for ``None``); return how many.

    The jobs table is the scheduler's; this one statement is all that forgetting does to it.
    """
    cursor = await conn.execute(
        "UPDATE jobs SET prompt = '', negative_prompt = '' WHERE guild_id = ?1 AND (?2 IS NULL OR member_id = ?2)"
        f" AND state IN ({', '.join('?' * len(ENDED_STATES))}) AND (prompt != '' OR negative_prompt != '')",
        (guild_id, member_id, *ENDED_STATES),
    )
    return cursor.rowcount


async def _job_guilds(conn: aiosqlite.Connection, member_id: int) -> set[int]:
    async with conn.execute(
        "SELECT DISTINCT guild_id FROM jobs WHERE member_id = ? AND guild_id IS NOT NULL", (member_id,)
    ) as cursor:
        return {guild_id for (guild_id,) in await cursor.fetchall()}


class Forgetting:
    """Privacy deletions of a member's data."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def member(self, guild_id: int, member_id: int, actor_id: int | None) -> Forgotten:
        """Forget a member in one server (a server admin's request)."""
        async with self._db.transaction() as conn:
            return await self._forget(conn, guild_id, member_id, actor_id, time.time())

    async def everywhere(self, member_id: int, actor_id: int | None = None) -> list[Forgotten]:
        """Forget a member in every server that holds data about them (the operator's request)."""
        now = time.time()
        async with self._db.transaction() as conn:
            guilds = await member_guilds(conn, member_id) | await _job_guilds(conn, member_id)
            return [await self._forget(conn, guild_id, member_id, actor_id, now) for guild_id in sorted(guilds)]

    async def _forget(self, conn: aiosqlite.Connection, guild_id: int, member_id: int, actor_id: int | None,
                      now: float) -> Forgotten:  # fmt: skip
        moderation = await forget_member(conn, guild_id, member_id, now)
        await conn.execute(  # alerts of the images just deleted
            "DELETE FROM review_alerts WHERE guild_id = ?1"
            " AND item_id NOT IN (SELECT id FROM moderation_items WHERE guild_id = ?1)",
            (guild_id,),
        )
        forgotten = Forgotten(guild_id, moderation, await blank_job_prompts(conn, guild_id, member_id))
        await write_audit(conn, guild_id, now, actor_id, "forgot_member", None, member_id, forgotten.describe())
        return forgotten
