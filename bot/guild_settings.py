"""Per-server settings: the config gives every server's defaults, a server's admins override them live.

Overrides are rows of ``guild_settings`` (JSON values), loaded once at start
and written through, each change audited in the server's moderation audit log
in the same transaction. Roles and channels are stored by id.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import Any, Literal

from bot.db import Database
from bot.image_policy import Bands, band_problem
from bot.refusal import Refusal
from bot.settings import Settings
from moderation.audit import write_audit
from moderation.config import MAX_WARNING_HOURS, WARNINGS_TO_BAN_RANGE, check_hours, check_warnings_to_ban

Kind = Literal["roles", "channels", "channel", "score", "categories", "count", "hours", "fraction"]
SCORE_RANGE = (0.5, 100.0)
"""The allowed range of a server's flag thresholds."""
NUMBER_KINDS: dict[str, str] = {
    "score": f"{SCORE_RANGE[0]:g} to {SCORE_RANGE[1]:g}",
    "count": f"a whole number from {WARNINGS_TO_BAN_RANGE[0]} to {WARNINGS_TO_BAN_RANGE[1]}",
    "hours": f"more than 0 and at most {MAX_WARNING_HOURS:g} hours",
    "fraction": "0 to 1",
}
"""The kinds of setting given as a number, and the range each allows."""
SETTING_KINDS: dict[str, Kind] = {
    "dream_channel_ids": "channels",
    "moderators_channel_id": "channel",
    "moderator_role_ids": "roles",
    "admin_role_ids": "roles",
    "alert_score": "score",
    "hide_score": "score",
    "filter_off": "categories",
    "warnings_to_ban": "count",
    "warning_window_hours": "hours",
    "auto_ban_hours": "hours",
    "image_allow_below": "fraction",
    "image_block_at": "fraction",
    "nsfw_image_allow_below": "fraction",
    "nsfw_image_block_at": "fraction",
}
"""The keys a server's admins may set, and what each takes."""


@dataclass(frozen=True)
class ServerSettings:
    """One server's effective settings."""

    guild_id: int
    dream_channel_ids: tuple[int, ...]
    """Where ``/dream`` may be used; empty: every channel."""
    moderators_channel_id: int | None
    moderator_role_ids: tuple[int, ...]
    admin_role_ids: tuple[int, ...]
    alert_score: float
    hide_score: float
    filter_off: tuple[str, ...]
    """Filter categories of the config this server turned off."""
    warnings_to_ban: int
    """Warnings within the window that bring an automatic ban."""
    warning_window_hours: float
    auto_ban_hours: float
    image_allow_below: float
    image_block_at: float
    nsfw_image_allow_below: float | None
    nsfw_image_block_at: float | None
    """The image safety check's bands (see :mod:`bot.image_policy`); the NSFW ones None: as other channels."""
    overridden: frozenset[str]
    """The keys the server set itself; the others are the config's."""

    def values(self) -> dict[str, Any]:
        """Every settable key and its value, in :data:`SETTING_KINDS` order."""
        return {key: getattr(self, key) for key in SETTING_KINDS}

    def image_bands(self, nsfw: bool) -> Bands:
        """The image safety check's bands in an ordinary or an age-restricted (NSFW) channel."""
        ordinary = Bands(self.image_allow_below, self.image_block_at)
        return ordinary.overridden(self.nsfw_image_allow_below, self.nsfw_image_block_at) if nsfw else ordinary


def _defaults(settings: Settings) -> dict[str, Any]:
    discord, flags, warnings = settings.discord, settings.moderation.flags, settings.moderation.warnings
    images = settings.image_policy
    return {
        "dream_channel_ids": discord.dream_channel_ids,
        "moderators_channel_id": discord.moderators_channel_id,
        "moderator_role_ids": discord.moderator_role_ids,
        "admin_role_ids": discord.admin_role_ids,
        "alert_score": flags.alert_score,
        "hide_score": flags.hide_score,
        "filter_off": (),
        "warnings_to_ban": warnings.warnings_to_ban,
        "warning_window_hours": warnings.warning_window_hours,
        "auto_ban_hours": warnings.auto_ban_hours,
        "image_allow_below": images.allow_below,
        "image_block_at": images.block_at,
        "nsfw_image_allow_below": images.nsfw_allow_below,
        "nsfw_image_block_at": images.nsfw_block_at,
    }


class GuildSettingsStore:
    """Every server's overrides, in memory and in the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._defaults = _defaults(settings)
        self._categories = tuple(settings.moderation.filter.categories)
        self._overrides: dict[int, dict[str, Any]] = {}

    async def load(self) -> None:
        """Read every server's overrides (at start)."""
        async with self._db.conn.execute("SELECT guild_id, key, value FROM guild_settings") as cursor:
            for row in await cursor.fetchall():
                if row["key"] in SETTING_KINDS:  # a key a later release dropped is ignored
                    value = json.loads(row["value"])
                    self._overrides.setdefault(row["guild_id"], {})[row["key"]] = (
                        tuple(value) if isinstance(value, list) else value
                    )

    def reconfigure(self, settings: Settings) -> None:
        """New config defaults (after a reload); servers' overrides stay."""
        self._defaults = _defaults(settings)
        self._categories = tuple(settings.moderation.filter.categories)

    def effective(self, guild_id: int) -> ServerSettings:
        """The server's settings: its overrides over the config's defaults."""
        own = self._overrides.get(guild_id, {})
        values = {**self._defaults, **own}
        names = {field.name for field in fields(ServerSettings)} - {"guild_id", "overridden"}
        return ServerSettings(guild_id, **{name: values[name] for name in names}, overridden=frozenset(own))

    async def set(self, guild_id: int, key: str, value: Any, actor_id: int) -> ServerSettings:
        """Override one key for the server (None: back to the config default); refuse a bad value with the range."""
        if key not in SETTING_KINDS:
            raise Refusal(f"`{key}` is not a server setting; those are: {', '.join(SETTING_KINDS)}.")
        if value is not None:
            value = self._checked(guild_id, key, value)
        before = self.effective(guild_id).values()[key]
        now = time.time()
        async with self._db.transaction() as conn:
            if value is None:
                await conn.execute("DELETE FROM guild_settings WHERE guild_id = ? AND key = ?", (guild_id, key))
            else:
                await conn.execute(
                    "INSERT INTO guild_settings (guild_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (guild_id, key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by,"
                    " set_at = excluded.set_at",
                    (guild_id, key, json.dumps(value), actor_id, now),
                )
            after = value if value is not None else self._defaults[key]
            await write_audit(conn, guild_id, now, actor_id, "setting", None, None, f"{key}: {before} → {after}")
        own = self._overrides.setdefault(guild_id, {})
        if value is None:
            own.pop(key, None)
        else:
            own[key] = value
        return self.effective(guild_id)

    def _checked(self, guild_id: int, key: str, value: Any) -> Any:
        if SETTING_KINDS[key] == "categories":
            unknown = [name for name in value if name not in self._categories]
            if unknown or not value:
                raise Refusal(f"`{key}` takes filter categories of the config: {', '.join(self._categories)}; "
                              f"not {', '.join(unknown) or 'none'}.")  # fmt: skip
            return tuple(dict.fromkeys(value))
        if SETTING_KINDS[key] == "fraction":
            return self._checked_band(guild_id, key, value)
        if SETTING_KINDS[key] in ("count", "hours"):
            check = check_warnings_to_ban if SETTING_KINDS[key] == "count" else check_hours
            try:
                return check(value)
            except ValueError as exc:
                raise Refusal(f"`{key}` {exc}; {value:g} is out of range.") from None
        if SETTING_KINDS[key] != "score":
            return value
        low, high = SCORE_RANGE
        if not low <= value <= high:
            raise Refusal(f"`{key}` must be {low:g} to {high:g}; {value:g} is out of range.")
        current = self.effective(guild_id)
        alert = value if key == "alert_score" else current.alert_score
        hide = value if key == "hide_score" else current.hide_score
        if hide < alert:
            raise Refusal(f"hide_score ({hide:g}) must not be below alert_score ({alert:g}): moderators hear of an "
                          "image before it hides.")  # fmt: skip
        return float(value)

    def _checked_band(self, guild_id: int, key: str, value: float) -> float:
        if not 0 <= value <= 1:
            raise Refusal(f"`{key}` must be 0 to 1; {value:g} is out of range.")
        after = ServerSettings(guild_id, **{**self.effective(guild_id).values(), key: float(value)},
                               overridden=frozenset())  # fmt: skip
        for nsfw, prefix in ((False, "image_"), (True, "nsfw_image_")):  # an ordinary bound may be the NSFW one too
            bands = after.image_bands(nsfw)
            problem = band_problem(bands.allow_below, bands.block_at, prefix)
            if problem:
                raise Refusal(f"{problem}: an image would be withheld before it could be reviewed.")
        return float(value)

    def forget(self, guild_id: int) -> None:
        """Drop a server's overrides from memory (its rows are deleted with the server's data)."""
        self._overrides.pop(guild_id, None)
