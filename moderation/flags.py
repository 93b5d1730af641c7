"""The flag store: members flag images, moderators review them, every action is audited.

One review item per flagged image; one flag per member per image (a second is
not counted). An item's score is the sum of its flags' weights, where a member
whose past flags were upheld weighs more. Crossing ``alert_score`` tells the
moderators and crossing ``hide_score`` hides the image, each exactly once.
Items move open → dismissed | actioned and back only by being reopened; each
move, with the moderator and a note, lands in the append-only audit log.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from moderation.config import FlagSettings
from moderation.storage import Database

ItemState = Literal["open", "dismissed", "actioned"]
Resolution = Literal["removed", "warned", "banned"]
RESOLUTIONS: tuple[Resolution, ...] = ("removed", "warned", "banned")


class FlagError(Exception):
    """A flag cannot be recorded; the text is safe to show the member."""


class ReviewError(Exception):
    """A review action cannot be taken; the text is safe to show the moderator."""


@dataclass(frozen=True, slots=True)
class FlaggedImage:
    """The posted image a member flags."""

    message_id: int
    author_id: int
    prompt: str
    job_id: int | None = None
    channel_id: int | None = None
    guild_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A flagged image awaiting or past review."""

    id: int
    message_id: int
    channel_id: int | None
    guild_id: int | None
    job_id: int | None
    author_id: int
    prompt: str
    state: ItemState
    resolution: Resolution | None
    score: float
    flag_count: int
    alerted_at: float | None
    hidden_at: float | None
    resolved_by: int | None
    resolved_at: float | None
    created_at: float
    updated_at: float

    @property
    def hidden(self) -> bool:
        """Whether the image was auto-hidden."""
        return self.hidden_at is not None


@dataclass(frozen=True, slots=True)
class Flag:
    """One member's flag on one image."""

    id: int
    item_id: int
    flagger_id: int
    reason: str
    note: str
    weight: float
    created_at: float


@dataclass(frozen=True, slots=True)
class FlagOutcome:
    """What one flag did."""

    item: ReviewItem
    counted: bool
    """False when this member had already flagged this image."""
    alert: bool
    """This flag took the score to ``alert_score``: tell the moderators now."""
    hide: bool
    """This flag took the score to ``hide_score``: hide the image now."""


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of open items, highest score first."""

    items: list[ReviewItem]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


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


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderator (or system) action."""

    id: int
    at: float
    moderator_id: int | None
    """None: the bot itself."""
    action: str
    item_id: int | None
    member_id: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class DeletedData:
    """What ``delete_user_data`` removed."""

    items: int
    """Flagged images the member made."""
    flags: int
    """Flags the member gave."""


class FlagStore:
    """Flags, review items and the audit log, in the application's SQLite database."""

    def __init__(self, db: Database, settings: FlagSettings) -> None:
        self._db = db
        self.settings = settings

    # --- members ---------------------------------------------------------------------------------

    async def flag(self, image: FlaggedImage, flagger_id: int, reason: str, note: str = "", *,
                   now: float | None = None) -> FlagOutcome:  # fmt: skip
        """Record ``flagger_id``'s flag on ``image``; say whether it crossed the alert or hide score just now."""
        if reason not in self.settings.reasons:
            raise FlagError(f"Pick a reason from: {', '.join(self.settings.reasons)}.")
        note = note.strip()
        if len(note) > self.settings.note_max_chars:
            raise FlagError(f"Keep the note under {self.settings.note_max_chars} characters.")
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO moderation_items (message_id, channel_id, guild_id, job_id, author_id, prompt,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (image.message_id, image.channel_id, image.guild_id, image.job_id, image.author_id, image.prompt,
                 now, now),
            )  # fmt: skip
            item = await self._one(conn, "message_id = ?", image.message_id)
            weight = await self._weight(conn, flagger_id)
            cursor = await conn.execute(
                "INSERT INTO moderation_flags (item_id, flagger_id, reason, note, weight, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (flagger_id, item_id) DO NOTHING",
                (item.id, flagger_id, reason, note, weight, now),
            )
            if cursor.rowcount == 0:
                return FlagOutcome(item, counted=False, alert=False, hide=False)
            score = item.score + weight
            reviewable = item.state == "open"
            alert = reviewable and item.alerted_at is None and score >= self.settings.alert_score
            hide = reviewable and item.hidden_at is None and score >= self.settings.hide_score
            await conn.execute(
                "UPDATE moderation_items SET score = ?, flag_count = flag_count + 1, updated_at = ?,"
                " alerted_at = CASE WHEN ? THEN ? ELSE alerted_at END,"
                " hidden_at = CASE WHEN ? THEN ? ELSE hidden_at END WHERE id = ?",
                (score, now, alert, now, hide, now, item.id),
            )
            if hide:
                detail = f"score {score:g} reached hide_score {self.settings.hide_score:g}"
                await self._audit(conn, now, None, "auto_hidden", item.id, item.author_id, detail)
            item = await self._one(conn, "id = ?", item.id)
        return FlagOutcome(item, counted=True, alert=alert, hide=hide)

    async def _weight(self, conn: aiosqlite.Connection, flagger_id: int) -> float:
        """1, plus the accuracy bonus times the share of this member's resolved flags that were upheld."""
        async with conn.execute(
            "SELECT coalesce(sum(i.state = 'actioned'), 0), coalesce(sum(i.state = 'dismissed'), 0)"
            " FROM moderation_flags f JOIN moderation_items i ON i.id = f.item_id WHERE f.flagger_id = ?",
            (flagger_id,),
        ) as cursor:
            upheld, rejected = await cursor.fetchone()
        resolved = upheld + rejected
        if resolved < self.settings.accuracy_min_resolved:
            return 1.0
        return 1.0 + self.settings.accuracy_bonus * upheld / resolved

    # --- moderators ------------------------------------------------------------------------------

    async def dismiss(self, item_id: int, moderator_id: int, note: str = "", *, now: float | None = None) -> ReviewItem:
        """Close an open item as a false alarm."""
        return await self._move(item_id, moderator_id, "dismissed", None, note, now)

    async def action(self, item_id: int, moderator_id: int, resolution: Resolution, note: str = "", *,
                     now: float | None = None) -> ReviewItem:  # fmt: skip
        """Close an open item by acting on it: the image removed, or its author warned or banned."""
        if resolution not in RESOLUTIONS:
            raise ReviewError(f"Resolve with one of: {', '.join(RESOLUTIONS)}.")
        return await self._move(item_id, moderator_id, "actioned", resolution, note, now)

    async def reopen(self, item_id: int, moderator_id: int, note: str = "", *, now: float | None = None) -> ReviewItem:
        """Put a dismissed or actioned item back in the queue."""
        return await self._move(item_id, moderator_id, "open", None, note, now)

    async def _move(self, item_id: int, moderator_id: int, state: ItemState, resolution: Resolution | None,
                    note: str, now: float | None) -> ReviewItem:  # fmt: skip
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            item = await self._one(conn, "id = ?", item_id)
            if item is None:
                raise ReviewError(f"There is no review item #{item_id}.")
            if (state == "open") == (item.state == "open"):
                raise ReviewError(
                    f"Item #{item_id} is already open."
                    if state == "open"
                    else f"Item #{item_id} is already {item.state}; reopen it first."
                )
            closing = state != "open"
            await conn.execute(
                "UPDATE moderation_items SET state = ?, resolution = ?, resolved_by = ?, resolved_at = ?,"
                " updated_at = ? WHERE id = ?",
                (state, resolution, moderator_id if closing else None, now if closing else None, now, item_id),
            )
            action = resolution or ("reopened" if state == "open" else state)
            await self._audit(conn, now, moderator_id, action, item_id, item.author_id, note.strip())
            return await self._one(conn, "id = ?", item_id)

    async def audit(self, moderator_id: int | None, action: str, *, item_id: int | None = None,
                    member_id: int | None = None, detail: str = "", now: float | None = None) -> None:  # fmt: skip
        """Record a moderator's action taken outside the review queue (e.g. deleting a member's image)."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await self._audit(conn, now, moderator_id, action, item_id, member_id, detail.strip())

    async def _audit(self, conn: aiosqlite.Connection, at: float, moderator_id: int | None, action: str,
                     item_id: int | None, member_id: int | None, detail: str) -> None:  # fmt: skip
        await conn.execute(
            "INSERT INTO moderation_audit (at, moderator_id, action, item_id, member_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, moderator_id, action, item_id, member_id, detail),
        )

    # --- queries ---------------------------------------------------------------------------------

    async def _one(self, conn: aiosqlite.Connection, where: str, value: int) -> ReviewItem | None:
        async with conn.execute(f"SELECT * FROM moderation_items WHERE {where}", (value,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else ReviewItem(**dict(row))

    async def item(self, item_id: int) -> ReviewItem | None:
        """One review item by id."""
        return await self._one(self._db.conn, "id = ?", item_id)

    async def item_for_message(self, message_id: int) -> ReviewItem | None:
        """The review item of a posted image, if it was ever flagged."""
        return await self._one(self._db.conn, "message_id = ?", message_id)

    async def flags(self, item_id: int) -> list[Flag]:
        """The flags on one item, oldest first."""
        async with self._db.conn.execute(
            "SELECT * FROM moderation_flags WHERE item_id = ? ORDER BY id", (item_id,)
        ) as cursor:
            return [Flag(**dict(row)) for row in await cursor.fetchall()]

    async def review_queue(self, *, page: int = 0, per_page: int = 10) -> QueuePage:
        """Open items, highest score first (oldest first among equals); ``page`` counts from 0."""
        conn = self._db.conn
        async with conn.execute("SELECT count(*) FROM moderation_items WHERE state = 'open'") as cursor:
            (total,) = await cursor.fetchone()
        async with conn.execute(
            "SELECT * FROM moderation_items WHERE state = 'open' ORDER BY score DESC, id LIMIT ? OFFSET ?",
            (per_page, page * per_page),
        ) as cursor:
            items = [ReviewItem(**dict(row)) for row in await cursor.fetchall()]
        return QueuePage(items, page, per_page, total)

    async def member_history(self, member_id: int, *, limit: int = 10) -> MemberHistory:
        """A member's flagged images and their record as a flagger."""
        conn = self._db.conn
        async with conn.execute(
            "SELECT * FROM moderation_items WHERE author_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (member_id, limit),
        ) as cursor:
            items = [ReviewItem(**dict(row)) for row in await cursor.fetchall()]
        async with conn.execute(
            "SELECT state, count(*) FROM moderation_items WHERE author_id = ? GROUP BY state", (member_id,)
        ) as cursor:
            states = {state: count for state, count in await cursor.fetchall()}
        async with conn.execute(
            "SELECT count(*), coalesce(sum(i.state = 'actioned'), 0), coalesce(sum(i.state = 'dismissed'), 0)"
            " FROM moderation_flags f JOIN moderation_items i ON i.id = f.item_id WHERE f.flagger_id = ?",
            (member_id,),
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
            flag_weight=await self._weight(conn, member_id),
        )

    async def stats(self) -> FlagStats:
        """Items by state and resolution, and flags by reason."""
        conn = self._db.conn
        async with conn.execute(
            "SELECT state, resolution, count(*), coalesce(sum(hidden_at IS NOT NULL), 0)"
            " FROM moderation_items GROUP BY state, resolution"
        ) as cursor:
            rows = await cursor.fetchall()
        async with conn.execute("SELECT reason, count(*) FROM moderation_flags GROUP BY reason") as cursor:
            reasons = {reason: count for reason, count in await cursor.fetchall()}
        return FlagStats(
            open=sum(row[2] for row in rows if row[0] == "open"),
            open_hidden=sum(row[3] for row in rows if row[0] == "open"),
            dismissed=sum(row[2] for row in rows if row[0] == "dismissed"),
            actioned={row[1]: row[2] for row in rows if row[0] == "actioned"},
            flags=sum(reasons.values()),
            reasons=reasons,
        )

    async def audit_log(self, *, item_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """The newest audit entries, for one item or all."""
        async with self._db.conn.execute(
            "SELECT * FROM moderation_audit WHERE ?1 IS NULL OR item_id = ?1 ORDER BY id DESC LIMIT ?2",
            (item_id, limit),
        ) as cursor:
            return [AuditEntry(**dict(row)) for row in await cursor.fetchall()]

    # --- privacy ---------------------------------------------------------------------------------

    async def delete_user_data(self, member_id: int, *, moderator_id: int | None = None,
                               now: float | None = None) -> DeletedData:  # fmt: skip
        """Delete a member's flagged images and the flags they gave (rescoring what they flagged).

        The audit log keeps its entries (ids and actions, no prompts): it is the
        record of what moderators did, and this deletion is added to it.
        """
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT DISTINCT item_id FROM moderation_flags WHERE flagger_id = ?", (member_id,)
            ) as cursor:
                flagged = [item_id for (item_id,) in await cursor.fetchall()]
            flags = (await conn.execute("DELETE FROM moderation_flags WHERE flagger_id = ?", (member_id,))).rowcount
            await conn.executemany(
                "UPDATE moderation_items SET updated_at = ?1,"
                " score = (SELECT coalesce(sum(weight), 0) FROM moderation_flags WHERE item_id = ?2),"
                " flag_count = (SELECT count(*) FROM moderation_flags WHERE item_id = ?2) WHERE id = ?2",
                [(now, item_id) for item_id in flagged],
            )
            items = (await conn.execute("DELETE FROM moderation_items WHERE author_id = ?", (member_id,))).rowcount
            detail = f"deleted {items} flagged image(s) and {flags} flag(s)"
            await self._audit(conn, now, moderator_id, "deleted_user_data", None, member_id, detail)
        return DeletedData(items, flags)
