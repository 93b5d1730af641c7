"""The flag store: members flag images, moderators review them, every action is audited.

One review item per flagged image; one flag per member per image (a second is
not counted). An item's score is the sum of its flags' weights, where a member
whose past flags were upheld weighs more. Crossing ``alert_score`` tells the
moderators and crossing ``hide_score`` hides the image, each exactly once.
Items move open → dismissed | actioned and back only by being reopened; each
move, with the moderator and a note, lands in the append-only audit log.
Everything belongs to one server: every method takes its guild id, and an item
of another server is "no such item". Members' records and a server's figures
are read in :mod:`moderation.flag_reports`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from moderation.audit import write_audit
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
    guild_id: int
    author_id: int
    prompt: str
    job_id: int | None = None
    channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A flagged image awaiting or past review."""

    id: int
    message_id: int
    channel_id: int | None
    guild_id: int
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
    guild_id: int


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


async def flag_weight(conn: aiosqlite.Connection, settings: FlagSettings, guild_id: int, flagger_id: int) -> float:
    """1, plus the accuracy bonus times the share of this member's resolved flags in the server that were upheld."""
    async with conn.execute(
        "SELECT coalesce(sum(i.state = 'actioned'), 0), coalesce(sum(i.state = 'dismissed'), 0)"
        " FROM moderation_flags f JOIN moderation_items i ON i.id = f.item_id"
        " WHERE f.guild_id = ? AND f.flagger_id = ?",
        (guild_id, flagger_id),
    ) as cursor:
        upheld, rejected = await cursor.fetchone()
    resolved = upheld + rejected
    if resolved < settings.accuracy_min_resolved:
        return 1.0
    return 1.0 + settings.accuracy_bonus * upheld / resolved


class FlagStore:
    """Flags, review items and the audit log, in the application's SQLite database."""

    def __init__(self, db: Database, settings: FlagSettings) -> None:
        self._db = db
        self.settings = settings

    # --- members ---------------------------------------------------------------------------------

    async def flag(self, image: FlaggedImage, flagger_id: int, reason: str, note: str = "", *,
                   thresholds: FlagSettings | None = None, now: float | None = None) -> FlagOutcome:  # fmt: skip
        """Record ``flagger_id``'s flag on ``image``; say whether it crossed the alert or hide score just now.

        ``thresholds``: the image's server's own alert and hide scores (default: the store's settings).
        """
        limits = thresholds or self.settings
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
            item = await self._one(conn, image.guild_id, "message_id = ?", image.message_id)
            if item is None:  # that message's item belongs to another server: a forged interaction
                raise FlagError("There is no such image to flag here.")
            weight = await flag_weight(conn, self.settings, image.guild_id, flagger_id)
            cursor = await conn.execute(
                "INSERT INTO moderation_flags (guild_id, item_id, flagger_id, reason, note, weight, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (flagger_id, item_id) DO NOTHING",
                (image.guild_id, item.id, flagger_id, reason, note, weight, now),
            )
            if cursor.rowcount == 0:
                return FlagOutcome(item, counted=False, alert=False, hide=False)
            score = item.score + weight
            reviewable = item.state == "open"
            alert = reviewable and item.alerted_at is None and score >= limits.alert_score
            hide = reviewable and item.hidden_at is None and score >= limits.hide_score
            await conn.execute(
                "UPDATE moderation_items SET score = ?, flag_count = flag_count + 1, updated_at = ?,"
                " alerted_at = CASE WHEN ? THEN ? ELSE alerted_at END,"
                " hidden_at = CASE WHEN ? THEN ? ELSE hidden_at END WHERE id = ?",
                (score, now, alert, now, hide, now, item.id),
            )
            if hide:
                detail = f"score {score:g} reached hide_score {limits.hide_score:g}"
                await write_audit(conn, item.guild_id, now, None, "auto_hidden", item.id, item.author_id, detail)
            item = await self._one(conn, item.guild_id, "id = ?", item.id)
        return FlagOutcome(item, counted=True, alert=alert, hide=hide)

    async def hold_for_review(self, image: FlaggedImage, detail: str, *, now: float | None = None) -> ReviewItem:
        """Put a posted image in the review queue with no flag, already hidden and alerted (the image safety
        check spoilered it and tells the moderators); ``detail`` is audited as why."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO moderation_items (message_id, channel_id, guild_id, job_id, author_id, prompt,"
                " alerted_at, hidden_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (image.message_id, image.channel_id, image.guild_id, image.job_id, image.author_id, image.prompt,
                 now, now, now, now),
            )  # fmt: skip
            item = await self._one(conn, image.guild_id, "message_id = ?", image.message_id)
            if item is None:
                raise ReviewError(f"Message {image.message_id} belongs to another server.")
            await write_audit(conn, image.guild_id, now, None, "safety_review", item.id, image.author_id, detail)
            return item

    # --- moderators ------------------------------------------------------------------------------

    async def dismiss(self, guild_id: int, item_id: int, moderator_id: int, note: str = "", *,
                      now: float | None = None) -> ReviewItem:  # fmt: skip
        """Close an open item as a false alarm."""
        return await self._move(guild_id, item_id, moderator_id, "dismissed", None, note, now)

    async def action(self, guild_id: int, item_id: int, moderator_id: int, resolution: Resolution, note: str = "", *,
                     now: float | None = None) -> ReviewItem:  # fmt: skip
        """Close an open item by acting on it: the image removed, or its author warned or banned."""
        if resolution not in RESOLUTIONS:
            raise ReviewError(f"Resolve with one of: {', '.join(RESOLUTIONS)}.")
        return await self._move(guild_id, item_id, moderator_id, "actioned", resolution, note, now)

    async def reopen(self, guild_id: int, item_id: int, moderator_id: int, note: str = "", *,
                     now: float | None = None) -> ReviewItem:  # fmt: skip
        """Put a dismissed or actioned item back in the queue."""
        return await self._move(guild_id, item_id, moderator_id, "open", None, note, now)

    async def _move(self, guild_id: int, item_id: int, moderator_id: int, state: ItemState,
                    resolution: Resolution | None, note: str, now: float | None) -> ReviewItem:  # fmt: skip
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            item = await self._one(conn, guild_id, "id = ?", item_id)
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
                " updated_at = ? WHERE guild_id = ? AND id = ?",
                (state, resolution, moderator_id if closing else None, now if closing else None, now, guild_id,
                 item_id),
            )  # fmt: skip
            action = resolution or ("reopened" if state == "open" else state)
            await write_audit(conn, guild_id, now, moderator_id, action, item_id, item.author_id, note)
            return await self._one(conn, guild_id, "id = ?", item_id)

    # --- queries ---------------------------------------------------------------------------------

    async def _one(self, conn: aiosqlite.Connection, guild_id: int, where: str, value: int) -> ReviewItem | None:
        async with conn.execute(
            f"SELECT * FROM moderation_items WHERE guild_id = ? AND {where}", (guild_id, value)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else ReviewItem(**dict(row))

    async def item(self, guild_id: int, item_id: int) -> ReviewItem | None:
        """One of the server's review items by id."""
        return await self._one(self._db.conn, guild_id, "id = ?", item_id)

    async def item_for_message(self, guild_id: int, message_id: int) -> ReviewItem | None:
        """The review item of an image posted in the server, if it was ever flagged."""
        return await self._one(self._db.conn, guild_id, "message_id = ?", message_id)

    async def flags(self, guild_id: int, item_id: int) -> list[Flag]:
        """The flags on one of the server's items, oldest first."""
        async with self._db.conn.execute(
            "SELECT * FROM moderation_flags WHERE guild_id = ? AND item_id = ? ORDER BY id", (guild_id, item_id)
        ) as cursor:
            return [Flag(**dict(row)) for row in await cursor.fetchall()]

    async def review_queue(self, guild_id: int, *, page: int = 0, per_page: int = 10) -> QueuePage:
        """The server's open items, highest score first (oldest first among equals); ``page`` counts from 0."""
        conn = self._db.conn
        async with conn.execute(
            "SELECT count(*) FROM moderation_items WHERE guild_id = ? AND state = 'open'", (guild_id,)
        ) as cursor:
            (total,) = await cursor.fetchone()
        async with conn.execute(
            "SELECT * FROM moderation_items WHERE guild_id = ? AND state = 'open' ORDER BY score DESC, id"
            " LIMIT ? OFFSET ?",
            (guild_id, per_page, page * per_page),
        ) as cursor:
            items = [ReviewItem(**dict(row)) for row in await cursor.fetchall()]
        return QueuePage(items, page, per_page, total)
