"""Members' own defaults for ``/dream`` (``/settings``), per member per server.

A member's preferences are the options they chose to set, stored as one JSON
object in ``member_preferences`` (keyed by server and member); an option they
did not set takes the config's default, and an option given to ``/dream``
wins over both. A default size is either an aspect ratio or a width and
height: setting one clears the other.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import aiosqlite

from bot.aspect import ASPECTS
from bot.db import Database
from bot.refusal import Refusal
from bot.scheduler.modes import MODES
from engine.types import SAMPLERS, GenerationParams, Limits, RequestError


@dataclass(frozen=True)
class Preferences:
    """A member's defaults in one server; None: not set (the config's default applies)."""

    aspect: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None
    count: int | None = None
    negative: str | None = None
    style: str | None = None
    mode: str | None = None

    def given(self) -> dict[str, Any]:
        """The options set, by name."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}

    def updated(self, changes: dict[str, Any]) -> Preferences:
        """These preferences with ``changes`` (None values are left out); an aspect clears a size and a size
        clears an aspect."""
        changes = {name: value for name, value in changes.items() if value is not None}
        if "aspect" in changes:
            changes.update(width=None, height=None)
        elif "width" in changes or "height" in changes:
            changes["aspect"] = None
        return replace(self, **changes)


PREFERENCE_NAMES: tuple[str, ...] = tuple(field.name for field in fields(Preferences))


def check_preferences(prefs: Preferences, limits: Limits) -> None:
    """Raise :class:`RequestError` naming the first preference the engine could never make (a tier's limits,
    which change, are checked when ``/dream`` uses them)."""
    if prefs.aspect is not None and prefs.aspect not in ASPECTS:
        raise RequestError("aspect", f"must be one of {', '.join(ASPECTS)}")
    if prefs.mode is not None and prefs.mode not in MODES:
        raise RequestError("mode", f"must be one of {', '.join(MODES)}")
    if prefs.sampler is not None and prefs.sampler not in SAMPLERS:
        raise RequestError("sampler", f"must be one of {', '.join(SAMPLERS)}")
    if prefs.count is not None and not 1 <= prefs.count <= limits.max_images:
        raise RequestError("count", f"must be 1 to {limits.max_images}")
    if prefs.negative is not None and len(prefs.negative) > limits.max_prompt_chars:
        raise RequestError("negative", f"must be at most {limits.max_prompt_chars} characters")
    sized = GenerationParams(**{name: value for name, value in prefs.given().items()
                                if name in ("width", "height", "steps", "guidance")})  # fmt: skip
    sized.validate(limits)


async def _read(conn: aiosqlite.Connection, guild_id: int, member_id: int) -> Preferences:
    async with conn.execute(
        "SELECT preferences FROM member_preferences WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
    ) as cursor:
        row = await cursor.fetchone()
    stored = json.loads(row[0]) if row is not None else {}
    # A name a later release dropped is ignored.
    return Preferences(**{name: value for name, value in stored.items() if name in PREFERENCE_NAMES})


class PreferenceStore:
    """Members' preferences in the database (read when used: one keyed row)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int, member_id: int) -> Preferences:
        """The member's preferences in the server (none set: all None)."""
        return await _read(self._db.conn, guild_id, member_id)

    async def change(self, guild_id: int, member_id: int, changes: dict[str, Any], limits: Limits) -> Preferences:
        """Set some of the member's preferences (checked against the engine's ``limits``); return them all."""

        def changed(current: Preferences) -> Preferences:
            prefs = current.updated(changes)
            check_preferences(prefs, limits)
            return prefs

        return await self._update(guild_id, member_id, changed)

    async def reset(self, guild_id: int, member_id: int, name: str | None = None) -> Preferences:
        """Forget one of the member's preferences (``name``), or all of them; return what is left."""
        if name is not None and name not in PREFERENCE_NAMES:
            raise Refusal(f"**option**: `{name}` is not one of your settings ({', '.join(PREFERENCE_NAMES)}).")
        return await self._update(guild_id, member_id,
                                  lambda current: Preferences() if name is None else replace(current, **{name: None}))

    async def _update(self, guild_id: int, member_id: int,
                      change: Callable[[Preferences], Preferences]) -> Preferences:  # fmt: skip
        """Read, change and write the member's preferences in one transaction (none left: the row goes)."""
        async with self._db.transaction() as conn:
            prefs = change(await _read(conn, guild_id, member_id))
            if prefs.given():
                await conn.execute(
                    "INSERT INTO member_preferences (guild_id, member_id, preferences, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, member_id) DO UPDATE"
                    " SET preferences = excluded.preferences, updated_at = excluded.updated_at",
                    (guild_id, member_id, json.dumps(prefs.given()), time.time()),
                )
            else:
                await conn.execute("DELETE FROM member_preferences WHERE guild_id = ? AND member_id = ?",
                                   (guild_id, member_id))  # fmt: skip
        return prefs
