"""Warnings that escalate: members' warnings per server, and the count that brings an automatic ban.

A warning belongs to one member in one server. When a new warning makes
``warnings_to_ban`` uncleared warnings within the window, counting only those
after the member's last automatic ban, that warning records the ban it brings,
in the same transaction as the warning and their audit entries; carrying the
ban out is the caller's. Every method takes the server's id: another server's
warning is "no such warning".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiosqlite

from moderation.audit import write_audit
from moderation.storage import Database

WarningSource = Literal["prompt", "image", "flag"]
"""What earned the warning: a blocked prompt, a withheld image, an actioned flag."""
HOUR_S = 3600.0


class WarningError(Exception):
    """A warning cannot be changed; the text is safe to show the moderator."""


@dataclass(frozen=True, slots=True)
class Escalation:
    """A server's rule: ``warnings_to_ban`` warnings within ``window_hours`` bring a ban of ``ban_hours``."""

    warnings_to_ban: int
    window_hours: float
    ban_hours: float


@dataclass(frozen=True, slots=True)
class MemberWarning:
    """One warning of one member in one server."""

    id: int
    guild_id: int
    member_id: int
    source: WarningSource
    reason: str
    given_by: int | None
    """The moderator whose decision gave it; None: the bot itself."""
    created_at: float
    banned_until: float | None
    """Until when the automatic ban it brought lasts; None if it brought none."""
    cleared_by: int | None
    cleared_at: float | None
    job_id: int | None
    """The job it was given for (a withheld image), which gives no second warning."""


@dataclass(frozen=True, slots=True)
class Warned:
    """What one new warning did."""

    warning: MemberWarning
    counted: int
    """Uncleared warnings in the window since the last automatic ban, this one included."""
    escalation: Escalation
    """The rule it was counted under."""
    repeated: bool = False
    """The warning was given for its job before (a delivery tried again after a restart): nothing was added."""

    @property
    def banned(self) -> bool:
        """Whether this warning brought an automatic ban."""
        return self.warning.banned_until is not None


class WarningStore:
    """Members' warnings per server, in the application's SQLite database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, guild_id: int, member_id: int, reason: str, source: WarningSource, *, given_by: int | None,
                  rule: Escalation, may_ban: bool, now: float, job_id: int | None = None,
                  audit: tuple[str, str] | None = None) -> Warned:  # fmt: skip
        """Warn a member; when this reaches ``rule``'s count (and ``may_ban``: the member is not banned already),
        record the automatic ban it brings. Both are audited, and ``audit`` (an action and its detail: what the
        warning is for) beside them, in the same transaction. A warning for a ``job_id`` (and ``source``) that
        has one already is that one, added to nothing (``repeated``)."""
        async with self._db.transaction() as conn:
            if job_id is not None:
                async with conn.execute(
                    "SELECT id FROM moderation_warnings WHERE guild_id = ? AND source = ? AND job_id = ?",
                    (guild_id, source, job_id),
                ) as cursor:
                    given = await cursor.fetchone()
                if given is not None:
                    counted = await _counting(conn, guild_id, member_id, now - rule.window_hours * HOUR_S)
                    warning = await _one(conn, guild_id, given["id"])
                    assert warning is not None
                    return Warned(warning, counted, rule, repeated=True)
            cursor = await conn.execute(
                "INSERT INTO moderation_warnings (guild_id, member_id, source, reason, given_by, created_at, job_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (guild_id, member_id, source, reason.strip(), given_by, now, job_id),
            )
            warning_id = cursor.lastrowid
            assert warning_id is not None
            if audit is not None:
                await write_audit(conn, guild_id, now, None, audit[0], None, member_id, audit[1])
            detail = f"warning #{warning_id}: {reason}"
            await write_audit(conn, guild_id, now, given_by, "warning", None, member_id, detail)
            counted = await _counting(conn, guild_id, member_id, now - rule.window_hours * HOUR_S)
            if may_ban and counted >= rule.warnings_to_ban:
                until = now + rule.ban_hours * HOUR_S
                await conn.execute(
                    "UPDATE moderation_warnings SET banned_until = ? WHERE guild_id = ? AND id = ?",
                    (until, guild_id, warning_id),
                )
                detail = f"{counted} warnings within {rule.window_hours:g} h: banned for {rule.ban_hours:g} h"
                await write_audit(conn, guild_id, now, None, "auto_ban", None, member_id, detail)
            warning = await _one(conn, guild_id, warning_id)
        assert warning is not None
        return Warned(warning, counted, rule)

    async def clear(self, guild_id: int, warning_id: int, moderator_id: int, note: str = "", *,
                    now: float) -> MemberWarning:  # fmt: skip
        """Clear one of the server's warnings: it stays listed as cleared and no longer counts toward a ban. A ban
        it brought stays (``unban`` lifts it)."""
        async with self._db.transaction() as conn:
            warning = await _one(conn, guild_id, warning_id)
            if warning is None:
                raise WarningError(f"There is no warning #{warning_id} in this server.")
            if warning.cleared_at is not None:
                raise WarningError(f"Warning #{warning_id} was already cleared.")
            await conn.execute(
                "UPDATE moderation_warnings SET cleared_by = ?, cleared_at = ? WHERE guild_id = ? AND id = ?",
                (moderator_id, now, guild_id, warning_id),
            )
            detail = f"warning #{warning_id} ({warning.reason})" + (f": {note}" if note.strip() else "")
            await write_audit(conn, guild_id, now, moderator_id, "unwarned", None, warning.member_id, detail)
            cleared = await _one(conn, guild_id, warning_id)
        assert cleared is not None
        return cleared

    async def of_member(self, guild_id: int, member_id: int, *, limit: int = 25) -> list[MemberWarning]:
        """A member's warnings in the server, newest first, cleared ones included."""
        async with self._db.conn.execute(
            "SELECT * FROM moderation_warnings WHERE guild_id = ? AND member_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, member_id, limit),
        ) as cursor:
            return [MemberWarning(**dict(row)) for row in await cursor.fetchall()]

    async def counting(self, guild_id: int, member_id: int, rule: Escalation, *, now: float) -> int:
        """The member's warnings that count toward their next automatic ban in the server now."""
        return await _counting(self._db.conn, guild_id, member_id, now - rule.window_hours * HOUR_S)


async def _counting(conn: aiosqlite.Connection, guild_id: int, member_id: int, since: float) -> int:
    """Uncleared warnings given after ``since`` and after the member's last automatic ban in the server."""
    async with conn.execute(
        "SELECT count(*) FROM moderation_warnings WHERE guild_id = ?1 AND member_id = ?2 AND cleared_at IS NULL"
        " AND created_at > ?3 AND id > coalesce((SELECT max(id) FROM moderation_warnings"
        " WHERE guild_id = ?1 AND member_id = ?2 AND banned_until IS NOT NULL), 0)",
        (guild_id, member_id, since),
    ) as cursor:
        (count,) = await cursor.fetchone()
    return int(count)


async def _one(conn: aiosqlite.Connection, guild_id: int, warning_id: int) -> MemberWarning | None:
    async with conn.execute(
        "SELECT * FROM moderation_warnings WHERE guild_id = ? AND id = ?", (guild_id, warning_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else MemberWarning(**dict(row))
