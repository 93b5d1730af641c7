"""Forgetting a member: in one server (``/admin forget``) or everywhere (``dreamqueue forget``), audited.

Their blocked prompts, their flagged images, the flags they gave and their
``/settings`` are deleted; their finished jobs keep their counts (quotas are charged from them)
but lose their prompts. Each server's deletion is recorded in that server's
audit log in the same transaction.

Their queued and running jobs are cancelled first (refunded, as any cancel),
so that no prompt of theirs is run or posted after they were forgotten, and
their prompts are blanked with the rest. That needs the running scheduler: the
command line, which cannot reach a running bot's queue, leaves such jobs as
they are and reports them (:attr:`Forgotten.left`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiosqlite

from bot.db import Database
from bot.scheduler.service import DreamService
from moderation.audit import write_audit
from moderation.privacy import ForgottenModeration, forget_member, member_guilds

ENDED_STATES = ("done", "failed", "cancelled", "interrupted")
"""Job states whose prompt is no longer needed to run the job."""
FORGOTTEN = "cancelled: your data in this server was deleted on request"
"""The reason a forgotten member's queued and running jobs are cancelled with."""


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a member removed in one server."""

    guild_id: int
    moderation: ForgottenModeration
    jobs: int
    """Jobs whose prompts were blanked."""
    cancelled: int = 0
    """Queued or running jobs cancelled first (refunded); their prompts are among those blanked."""
    left: int = 0
    """Queued or running jobs left as they were, with their prompts (no running scheduler to cancel them)."""

    def describe(self) -> str:
        found = self.moderation
        cancelled = f"cancelled {self.cancelled} queued or running job(s) (refunded); " if self.cancelled else ""
        left = f"; left {self.left} queued or running job(s) with their prompts" if self.left else ""
        return (f"{cancelled}deleted {found.prompts} blocked prompt(s), {found.items} flagged image(s) and "
                f"{found.flags} flag(s); blanked the prompts of {self.jobs} job(s){left}")  # fmt: skip


async def blank_job_prompts(conn: aiosqlite.Connection, guild_id: int, member_id: int | None) -> int:
    """Blank the prompts of the server's ended jobs, one member's (or everyone's, for ``None``), and delete their
    start images (a member's own picture among them); return how many prompts were blanked.

    The jobs table is the scheduler's; this one statement is all that forgetting does to it.
    """
    await conn.execute(
        "DELETE FROM job_inputs WHERE guild_id = ?1 AND job_id IN (SELECT id FROM jobs WHERE guild_id = ?1"
        f" AND (?2 IS NULL OR member_id = ?2) AND state IN ({', '.join('?' * len(ENDED_STATES))}))",
        (guild_id, member_id, *ENDED_STATES),
    )
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


async def _preference_guilds(conn: aiosqlite.Connection, member_id: int) -> set[int]:
    async with conn.execute("SELECT guild_id FROM member_preferences WHERE member_id = ?", (member_id,)) as cursor:
        return {guild_id for (guild_id,) in await cursor.fetchall()}


async def _active_jobs(conn: aiosqlite.Connection, guild_id: int, member_id: int) -> int:
    async with conn.execute(
        "SELECT count(*) FROM jobs WHERE guild_id = ? AND member_id = ? AND state IN ('queued', 'running')",
        (guild_id, member_id),
    ) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else 0


class Forgetting:
    """Privacy deletions of a member's data.

    ``dreams`` is the running scheduler, through which a member's queued and
    running jobs are cancelled first; None (the command line) leaves them.
    """

    def __init__(self, db: Database, dreams: DreamService | None = None) -> None:
        self._db = db
        self._dreams = dreams

    async def member(self, guild_id: int, member_id: int, actor_id: int | None) -> Forgotten:
        """Forget a member in one server (a server admin's request)."""
        cancelled = [] if self._dreams is None else await self._dreams.cancel_member(guild_id, member_id, FORGOTTEN)
        async with self._db.transaction() as conn:
            return await self._forget(conn, guild_id, member_id, actor_id, time.time(), len(cancelled))

    async def everywhere(self, member_id: int, actor_id: int | None = None) -> list[Forgotten]:
        """Forget a member in every server that holds data about them (the operator's request), server by server."""
        async with self._db.transaction() as conn:
            guilds = (await member_guilds(conn, member_id) | await _job_guilds(conn, member_id)
                      | await _preference_guilds(conn, member_id))  # fmt: skip
        return [await self.member(guild_id, member_id, actor_id) for guild_id in sorted(guilds)]

    async def _forget(self, conn: aiosqlite.Connection, guild_id: int, member_id: int, actor_id: int | None,
                      now: float, cancelled: int) -> Forgotten:  # fmt: skip
        moderation = await forget_member(conn, guild_id, member_id, now)
        await conn.execute(  # alerts of the images just deleted
            "DELETE FROM review_alerts WHERE guild_id = ?1"
            " AND item_id NOT IN (SELECT id FROM moderation_items WHERE guild_id = ?1)",
            (guild_id,),
        )
        await conn.execute("DELETE FROM member_preferences WHERE guild_id = ? AND member_id = ?", (guild_id, member_id))
        forgotten = Forgotten(guild_id, moderation, await blank_job_prompts(conn, guild_id, member_id), cancelled,
                              await _active_jobs(conn, guild_id, member_id))  # fmt: skip
        await write_audit(conn, guild_id, now, actor_id, "forgot_member", None, member_id, forgotten.describe())
        return forgotten
