"""The admin tables: tier changes, member overrides, bans, server weights and switches, each written with its
audit record in one transaction; and the audit log, read per server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiosqlite

from bot.scheduler.models import AuditEntry, Ban

if TYPE_CHECKING:
    from bot.scheduler.journal import Journal


class AdminTables:
    """Writes admin changes through the journal's connection (so :meth:`Journal.wait_idle` counts them too)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def audit(self, guild_id: int, limit: int) -> list[AuditEntry]:
        """The server's newest audit entries first (guild 0: the operator's changes to what servers share)."""
        rows = await self._journal.fetchall(
            "SELECT id, guild_id, at, actor_id, action, target, before, after FROM admin_audit WHERE guild_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [
            AuditEntry(id=row["id"], guild_id=row["guild_id"], at=row["at"], actor_id=row["actor_id"], action=row["action"],
                       target=row["target"], before=json.loads(row["before"]), after=json.loads(row["after"]))
            for row in rows
        ]

    # admin changes, each with its audit record in the same transaction

    async def set_tier_limit(self, guild_id: int, tier: str, name: str, value: float | None,
                             audit: AuditEntry) -> None:  # fmt: skip
        await self._audited(
            ("DELETE FROM tier_limits WHERE guild_id = ? AND tier = ? AND name = ?", (guild_id, tier, name))
            if value is None else
            ("INSERT OR REPLACE INTO tier_limits (guild_id, tier, name, value) VALUES (?, ?, ?, ?)",
             (guild_id, tier, name, value)),
            audit,
        )

    async def set_override(self, guild_id: int, member_id: int, name: str, value: float | None,
                           audit: AuditEntry) -> None:  # fmt: skip
        await self._audited(
            ("DELETE FROM member_overrides WHERE guild_id = ? AND member_id = ? AND name = ?",
             (guild_id, member_id, name))
            if value is None else
            ("INSERT OR REPLACE INTO member_overrides (guild_id, member_id, name, value) VALUES (?, ?, ?, ?)",
             (guild_id, member_id, name, value)),
            audit,
        )

    async def set_ban(self, ban: Ban, audit: AuditEntry) -> None:
        await self._audited(
            (("INSERT OR REPLACE INTO bans (guild_id, member_id, until, reason, banned_by, banned_at)"
              " VALUES (?, ?, ?, ?, ?, ?)"),
             (ban.guild_id, ban.member_id, ban.until, ban.reason, ban.banned_by, ban.banned_at)),
            audit,
        )

    async def lift_ban(self, guild_id: int, member_id: int, audit: AuditEntry) -> None:
        await self._audited(("DELETE FROM bans WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)), audit)

    async def set_server_weight(self, guild_id: int, weight: float | None, audit: AuditEntry) -> None:
        """Store a server's share of the GPU (None: back to the default)."""
        await self._audited(
            ("DELETE FROM server_weights WHERE guild_id = ?", (guild_id,)) if weight is None else
            ("INSERT OR REPLACE INTO server_weights (guild_id, weight) VALUES (?, ?)", (guild_id, weight)),
            audit,
        )

    async def set_switch(self, key: str, value: str, audit: AuditEntry) -> None:
        await self._audited(
            ("INSERT OR REPLACE INTO scheduler_state (key, value) VALUES (?, ?)", (key, value)), audit
        )

    async def record_audit(self, audit: AuditEntry) -> None:
        """Audit an action that changed nothing else in these tables (e.g. a moderator's cancel)."""
        async with self._journal.transaction() as conn:
            await _insert_audit(conn, audit)

    async def _audited(self, change: tuple[str, Sequence[object]], audit: AuditEntry) -> None:
        async with self._journal.transaction() as conn:
            await conn.execute(*change)
            await _insert_audit(conn, audit)


async def _insert_audit(conn: aiosqlite.Connection, audit: AuditEntry) -> None:
    await conn.execute(
        "INSERT INTO admin_audit (guild_id, at, actor_id, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (audit.guild_id, audit.at, audit.actor_id, audit.action, audit.target, json.dumps(audit.before), json.dumps(audit.after)),
    )
