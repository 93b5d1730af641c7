"""Keeping data no longer than promised: the blocked-prompt log's retention, and servers the bot has left.

The bot records when it joins and leaves each server (``guilds``). One
periodic task deletes blocked prompts past ``moderation.prompt_log_retention_days``
and, ``discord.left_guild_retention_days`` after the bot left a server, all of
that server's data; each run is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from bot.db import Database
from bot.filter_rules import GuildFilters
from bot.forget import blank_job_prompts
from bot.guild_settings import GuildSettingsStore
from moderation.privacy import forget_server
from moderation.prompt_log import DAY_S, BlockedPromptLog

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
"""How often the purge runs."""
BOT_TABLES = ("review_alerts", "filter_rule_changes", "guild_settings", "member_preferences", "server_styles")
"""The Discord layer's tables keyed by server."""


@dataclass(frozen=True)
class Purged:
    """What one purge deleted."""

    prompts: int
    """Blocked prompts past their retention."""
    servers: dict[int, int] = field(default_factory=dict)
    """Rows deleted (and jobs blanked) per server the bot left long enough ago."""


class Retention:
    """Joins and leaves of servers, and the purge."""

    def __init__(self, db: Database, prompt_log: BlockedPromptLog, guild_settings: GuildSettingsStore,
                 filters: GuildFilters, *, left_guild_days: int) -> None:  # fmt: skip
        self._db = db
        self._prompt_log = prompt_log
        self._guild_settings = guild_settings
        self._filters = filters
        self.left_guild_s = left_guild_days * DAY_S

    async def joined(self, guild_id: int, *, now: float | None = None) -> None:
        """The bot joined (or rejoined) a server: its data is kept again."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guilds (guild_id, joined_at, left_at) VALUES (?, ?, NULL)"
                " ON CONFLICT (guild_id) DO UPDATE SET joined_at = excluded.joined_at, left_at = NULL",
                (guild_id, time.time() if now is None else now),
            )

    async def left(self, guild_id: int, *, now: float | None = None) -> None:
        """The bot left or was removed from a server: its data goes after the retention period. (Every served
        server has its row, from :meth:`present` or :meth:`joined`; one never served stores nothing.)"""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE guilds SET left_at = ? WHERE guild_id = ?", (time.time() if now is None else now, guild_id)
            )

    async def present(self, guild_ids: set[int], *, now: float | None = None) -> None:
        """The served servers the bot is in on connecting: record them, and count the servers it was in but no
        longer is (it left while offline) as left now."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO guilds (guild_id, joined_at) VALUES (?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET left_at = NULL",
                [(guild_id, now) for guild_id in guild_ids],
            )
            async with conn.execute("SELECT guild_id FROM guilds WHERE left_at IS NULL") as cursor:
                gone = [guild_id for (guild_id,) in await cursor.fetchall() if guild_id not in guild_ids]
            await conn.executemany("UPDATE guilds SET left_at = ? WHERE guild_id = ?", [(now, g) for g in gone])
        if gone:
            log.info("left server(s) %s while offline; their data is deleted after the retention period", gone)

    async def purge(self, *, now: float | None = None) -> Purged:
        """Delete what is past its retention now."""
        now = time.time() if now is None else now
        purged = Purged(await self._prompt_log.purge(now=now))
        cutoff = now - self.left_guild_s
        async with self._db.conn.execute(
            "SELECT guild_id FROM guilds WHERE left_at IS NOT NULL AND left_at < ?", (cutoff,)
        ) as cursor:
            gone = [guild_id for (guild_id,) in await cursor.fetchall()]
        for guild_id in gone:
            async with self._db.transaction() as conn:
                async with conn.execute(
                    "SELECT 1 FROM guilds WHERE guild_id = ? AND left_at < ?", (guild_id, cutoff)
                ) as cursor:
                    if await cursor.fetchone() is None:
                        continue  # the bot rejoined it meanwhile: it is kept
                deleted = await forget_server(conn, guild_id) + await blank_job_prompts(conn, guild_id, None)
                for table in BOT_TABLES:
                    deleted += (await conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))).rowcount
                await conn.execute("DELETE FROM guilds WHERE guild_id = ?", (guild_id,))
            self._guild_settings.forget(guild_id)
            self._filters.forget(guild_id)
            purged.servers[guild_id] = deleted
        log.info("purge: %d blocked prompt(s) past retention; servers left long ago: %s", purged.prompts,
                 purged.servers or "none")  # fmt: skip
        return purged

    async def run(self, interval_s: float = PURGE_INTERVAL_S) -> None:
        """Purge now and then every ``interval_s``, until cancelled; a failed run is logged and retried later."""
        while True:
            try:
                await self.purge()
            except Exception:  # the next run tries again; the bot keeps serving meanwhile
                log.exception("purge failed")
            await asyncio.sleep(interval_s)
