"""The log of prompts the filter blocked or flagged, per server, kept for its moderators for a retention period."""

from __future__ import annotations

import time
from dataclasses import dataclass

from moderation.filter import Part, Verdict
from moderation.storage import Database

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class LoggedPrompt:
    """One blocked or flagged prompt."""

    id: int
    member_id: int
    guild_id: int
    prompt: str
    action: str
    category: str
    kind: str
    rule: str
    span: tuple[int, int]
    created_at: float
    part: Part
    """Which text of the request was blocked or flagged: the prompt or the negative prompt."""


class BlockedPromptLog:
    """Blocked and flag-action prompts: who, what, which rule, when."""

    def __init__(self, db: Database, *, retention_days: int = 30) -> None:
        self._db = db
        self.retention_s = retention_days * DAY_S

    async def record(self, guild_id: int, member_id: int, verdict: Verdict, *, now: float | None = None) -> int:
        """Log a verdict that blocked or flagged a prompt or a negative prompt (its ``part``); return its id."""
        if verdict.action == "allow" or verdict.span is None:
            raise ValueError("only blocked or flagged prompts are logged")
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO moderation_prompt_log (member_id, guild_id, prompt, action, category, kind, rule,"
                " span_start, span_end, created_at, part) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (member_id, guild_id, verdict.prompt, verdict.action, verdict.category, verdict.kind, verdict.rule,
                 *verdict.span, time.time() if now is None else now, verdict.part),
            )  # fmt: skip
            return cursor.lastrowid

    async def recent(self, guild_id: int, *, member_id: int | None = None, since: float | None = None,
                     limit: int = 25) -> list[LoggedPrompt]:  # fmt: skip
        """The server's newest entries, for one member or everyone, from ``since`` on (default: all kept)."""
        async with self._db.conn.execute(
            "SELECT * FROM moderation_prompt_log WHERE guild_id = ?1 AND (?2 IS NULL OR member_id = ?2)"
            " AND (?3 IS NULL OR created_at >= ?3) ORDER BY id DESC LIMIT ?4",
            (guild_id, member_id, since, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            LoggedPrompt(row["id"], row["member_id"], row["guild_id"], row["prompt"], row["action"], row["category"],
                         row["kind"], row["rule"], (row["span_start"], row["span_end"]), row["created_at"], row["part"])
            for row in rows
        ]  # fmt: skip

    async def purge(self, *, now: float | None = None) -> int:
        """Delete entries older than the retention period; return how many."""
        cutoff = (time.time() if now is None else now) - self.retention_s
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM moderation_prompt_log WHERE created_at < ?", (cutoff,))
            return cursor.rowcount
