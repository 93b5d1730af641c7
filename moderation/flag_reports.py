"""What moderators read about flags: a member's record in a server, and a server's figures."""

from __future__ import annotations

from dataclasses import dataclass

from moderation.config import FlagSettings
from moderation.flags import ReviewItem, flag_weight
from moderation.storage import Database


@dataclass(frozen=True, slots=True)
class MemberHistory:
    """One member as an author of flagged images and as a flagger."""

    member_id: int
    items: list[ReviewItem]
    """Their most recent flagged images."""
    open: int
    dismissed: int
    actioned: int
    flags_given: int
    flags_upheld: int
    """Their flags on images that were actioned."""
    flags_rejected: int
    """Their flags on images that were dismissed."""
    flag_weight: float
    """What their next flag weighs."""


@dataclass(frozen=True, slots=True)
class FlagStats:
    """Counts for the moderators' overview."""

    open: int
    open_hidden: int
    dismissed: int
    actioned: dict[str, int]
    """By resolution."""
    flags: int
    reasons: dict[str, int]


class FlagReports:
    """Read-only views of one server's flags."""

    def __init__(self, db: Database, settings: FlagSettings) -> None:
        self._db = db
        self.settings = settings

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> MemberHistory:
        """A member's flagged images in the server and their record there as a flagger."""
        conn = self._db.conn
        async with conn.execute(
            "SELECT * FROM moderation_items WHERE guild_id = ? AND author_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (guild_id, member_id, limit),
        ) as cursor:
            items = [ReviewItem(**dict(row)) for row in await cursor.fetchall()]
        async with conn.execute(
            "SELECT state, count(*) FROM moderation_items WHERE guild_id = ? AND author_id = ? GROUP BY state",
            (guild_id, member_id),
        ) as cursor:
            states = {state: count for state, count in await cursor.fetchall()}
        async with conn.execute(
            "SELECT count(*), coalesce(sum(i.state = 'actioned'), 0), coalesce(sum(i.state = 'dismissed'), 0)"
            " FROM moderation_flags f JOIN moderation_items i ON i.id = f.item_id"
            " WHERE f.guild_id = ? AND f.flagger_id = ?",
            (guild_id, member_id),
        ) as cursor:
            given, upheld, rejected = await cursor.fetchone()
        return MemberHistory(
            member_id,
            items,
            open=states.get("open", 0),
            dismissed=states.get("dismissed", 0),
            actioned=states.get("actioned", 0),
            flags_given=given,
            flags_upheld=upheld,
            flags_rejected=rejected,
            flag_weight=await flag_weight(conn, self.settings, guild_id, member_id),
        )

    async def stats(self, guild_id: int) -> FlagStats:
        """The server's items by state and resolution, and its flags by reason."""
        conn = self._db.conn
        async with conn.execute(
            "SELECT state, resolution, count(*), coalesce(sum(hidden_at IS NOT NULL), 0)"
            " FROM moderation_items WHERE guild_id = ? GROUP BY state, resolution",
            (guild_id,),
        ) as cursor:
            rows = await cursor.fetchall()
        async with conn.execute(
            "SELECT reason, count(*) FROM moderation_flags WHERE guild_id = ? GROUP BY reason", (guild_id,)
        ) as cursor:
            reasons = {reason: count for reason, count in await cursor.fetchall()}
        return FlagStats(
            open=sum(row[2] for row in rows if row[0] == "open"),
            open_hidden=sum(row[3] for row in rows if row[0] == "open"),
            dismissed=sum(row[2] for row in rows if row[0] == "dismissed"),
            actioned={row[1]: row[2] for row in rows if row[0] == "actioned"},
            flags=sum(reasons.values()),
            reasons=reasons,
        )
