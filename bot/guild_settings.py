"""Per-server settings: the config gives every server's defaults, a server's admins override them live.

Overrides are rows of ``guild_settings`` (JSON values), loaded once at start
and written through, each change audited in the server's moderation audit log
in the same transaction. Roles and channels are stored by id. A server's own
tier roles (which of its roles give which quota tier, on top of the config's
role ids) are stored the same way, under :data:`TIER_ROLES`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

import aiosqlite

from bot.db import Database
from bot.image_policy import Bands, band_problem
from bot.refusal import Refusal
from bot.scheduler.config import check_relax_term
from bot.scheduler.modes import RelaxTerms
from bot.setting_kinds import LIST_KINDS, NUMBER_KINDS, SCORE_RANGE, SETTING_KINDS, shown
from bot.settings import Settings
from moderation.audit import write_audit
from moderation.config import check_categories
from moderation.warning_settings import check_hours, check_warnings_to_ban

TIER_ROLES = "tier_roles"
"""The ``guild_settings`` key of a server's own tier roles: tier name to the ids of its roles that give it."""


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
    nsfw_prompt_categories: tuple[str, ...]
    """Filter categories allowed in the server's age-restricted (NSFW) channels; never hate or personal information."""
    warnings_to_ban: int
    """Warnings within the window that bring an automatic ban."""
    warning_window_hours: float
    auto_ban_hours: float
    image_allow_below: float
    image_block_at: float
    nsfw_image_allow_below: float | None
    nsfw_image_block_at: float | None
    """The image safety check's bands (see :mod:`bot.image_policy`); the NSFW ones None: as other channels."""
    vary_subtle_strength: float
    vary_strong_strength: float
    upscale_strength: float
    """The img2img strengths of the result controls (see :mod:`bot.control_settings`)."""
    relax_weight: float
    relax_max_jobs: int
    """Relax mode's terms (see :mod:`bot.scheduler.modes`)."""
    tier_roles: dict[str, tuple[int, ...]]
    """The server's own roles that give each tier (besides the config's role ids), by tier name."""
    overridden: frozenset[str]
    """The keys the server set itself; the others are the config's."""

    def values(self) -> dict[str, Any]:
        """Every settable key and its value, in :data:`SETTING_KINDS` order."""
        return {key: getattr(self, key) for key in SETTING_KINDS}

    @property
    def relax(self) -> RelaxTerms:
        return RelaxTerms(self.relax_weight, self.relax_max_jobs)

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
        "nsfw_prompt_categories": settings.moderation.filter.nsfw_prompt_categories,
        "warnings_to_ban": warnings.warnings_to_ban,
        "warning_window_hours": warnings.warning_window_hours,
        "auto_ban_hours": warnings.auto_ban_hours,
        "image_allow_below": images.allow_below,
        "image_block_at": images.block_at,
        "nsfw_image_allow_below": images.nsfw_allow_below,
        "nsfw_image_block_at": images.nsfw_block_at,
        **{key: getattr(settings.controls, key) for key in SETTING_KINDS if SETTING_KINDS[key] == "strength"},
        "relax_weight": settings.quotas.relax_weight,
        "relax_max_jobs": settings.quotas.relax_max_jobs,
    }


class GuildSettingsStore:
    """Every server's overrides and tier roles, in memory and in the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._overrides: dict[int, dict[str, Any]] = {}
        self._tier_roles: dict[int, dict[str, tuple[int, ...]]] = {}
        self.reconfigure(settings)

    async def load(self) -> None:
        """Read every server's overrides and tier roles (at start)."""
        async with self._db.conn.execute("SELECT guild_id, key, value FROM guild_settings") as cursor:
            for row in await cursor.fetchall():
                value = json.loads(row["value"])
                if row["key"] == TIER_ROLES:
                    self._tier_roles[row["guild_id"]] = {tier: tuple(ids) for tier, ids in value.items()}
                elif row["key"] in SETTING_KINDS:  # a key a later release dropped is ignored
                    self._overrides.setdefault(row["guild_id"], {})[row["key"]] = (
                        tuple(value) if isinstance(value, list) else value
                    )

    def reconfigure(self, settings: Settings) -> None:
        """New config defaults (after a reload); servers' overrides stay."""
        self._defaults = _defaults(settings)
        self._categories = tuple(settings.moderation.filter.categories)
        self._tiers = tuple(settings.quotas.tiers)

    def effective(self, guild_id: int) -> ServerSettings:
        """The server's settings: its overrides over the config's defaults."""
        own = self._overrides.get(guild_id, {})
        values = {**self._defaults, **own}
        return ServerSettings(guild_id, **{key: values[key] for key in SETTING_KINDS},
                              tier_roles=self.tier_roles(guild_id), overridden=frozenset(own))  # fmt: skip

    def tier_roles(self, guild_id: int) -> dict[str, tuple[int, ...]]:
        """The server's own roles that give each tier of the config (a tier the config dropped gives nothing)."""
        return {tier: ids for tier, ids in self._tier_roles.get(guild_id, {}).items() if tier in self._tiers}

    async def set(self, guild_id: int, key: str, value: Any, actor_id: int) -> ServerSettings:
        """Override one key for the server (None: back to the config default); refuse a bad value with the range."""
        if key not in SETTING_KINDS:
            raise Refusal(f"`{key}` is not a server setting; those are: {', '.join(SETTING_KINDS)}.")
        return await self._store(guild_id, key, None if value is None else self._checked(guild_id, key, value),
                                 actor_id)  # fmt: skip

    async def change_list(self, guild_id: int, key: str, items: tuple[Any, ...], actor_id: int, *,
                          add: bool) -> ServerSettings:  # fmt: skip
        """Add ``items`` to one of the server's list settings, or remove them from it; refuse a change that
        changes nothing, naming what was already there or missing."""
        kind = SETTING_KINDS.get(key)
        if kind not in LIST_KINDS:
            lists = ", ".join(name for name, each in SETTING_KINDS.items() if each in LIST_KINDS)
            raise Refusal(f"`{key}` is not a list setting; those are: {lists}. Use `/admin settings set` for it.")
        current = self.effective(guild_id).values()[key]
        if add:
            items = self._checked(guild_id, key, items)
            already = tuple(item for item in items if item in current)
            if already:
                raise Refusal(f"`{key}` already has {shown(kind, already)} here.")
            return await self._store(guild_id, key, (*current, *items), actor_id)
        missing = tuple(item for item in items if item not in current)
        if missing:
            raise Refusal(f"`{key}` has no {shown(kind, missing)} here; it has {shown(kind, current)}.")
        return await self._store(guild_id, key, tuple(item for item in current if item not in items), actor_id)

    async def set_tier_role(self, guild_id: int, tier: str, role_id: int, actor_id: int, *,
                            add: bool) -> tuple[int, ...]:  # fmt: skip
        """Make one of the server's roles give ``tier`` there (``add``), or stop it; return the tier's roles here."""
        if tier not in self._tiers:
            raise Refusal(f"There is no tier {tier!r}; the tiers are {', '.join(self._tiers)}.")
        own = dict(self._tier_roles.get(guild_id, {}))
        before = own.get(tier, ())
        if add == (role_id in before):
            raise Refusal(f"<@&{role_id}> {'already gives' if add else 'does not give'} tier **{tier}** here.")
        after = (*before, role_id) if add else tuple(role for role in before if role != role_id)
        if after:
            own[tier] = after
        else:
            del own[tier]
        now = time.time()
        async with self._db.transaction() as conn:
            await _write(conn, guild_id, TIER_ROLES, own or None, actor_id, now)
            await write_audit(conn, guild_id, now, actor_id, "setting", None, None,
                              f"{TIER_ROLES}.{tier}: {shown('roles', before)} → {shown('roles', after)}")  # fmt: skip
        self._tier_roles[guild_id] = own
        return after

    async def _store(self, guild_id: int, key: str, value: Any, actor_id: int) -> ServerSettings:
        """Write one checked override (None: remove it) with its audit record, then hold it in memory."""
        before = self.effective(guild_id).values()[key]
        now = time.time()
        async with self._db.transaction() as conn:
            await _write(conn, guild_id, key, value, actor_id, now)
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
            try:
                return check_categories(value, self._categories, nsfw=key == "nsfw_prompt_categories")
            except ValueError as exc:
                raise Refusal(f"`{key}` {exc}.") from None
        if SETTING_KINDS[key] == "fraction":
            return self._checked_band(guild_id, key, value)
        if SETTING_KINDS[key] == "relax":
            return check_relax_term(key, value)
        if SETTING_KINDS[key] in ("count", "hours"):
            check = check_warnings_to_ban if SETTING_KINDS[key] == "count" else check_hours
            try:
                return check(value)
            except ValueError as exc:
                raise Refusal(f"`{key}` {exc}; {value:g} is out of range.") from None
        if SETTING_KINDS[key] == "strength" and not 0 < value <= 1:
            raise Refusal(f"`{key}` must be {NUMBER_KINDS['strength']}; {value:g} is out of range.")
        if SETTING_KINDS[key] != "score":
            return float(value) if SETTING_KINDS[key] == "strength" else value
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
        after = replace(self.effective(guild_id), **{key: float(value)})
        for nsfw, prefix in ((False, "image_"), (True, "nsfw_image_")):  # an ordinary bound may be the NSFW one too
            bands = after.image_bands(nsfw)
            problem = band_problem(bands.allow_below, bands.block_at, prefix)
            if problem:
                raise Refusal(f"{problem}: an image would be withheld before it could be reviewed.")
        return float(value)

    def forget(self, guild_id: int) -> None:
        """Drop a server's overrides and tier roles from memory (its rows are deleted with the server's data)."""
        self._overrides.pop(guild_id, None)
        self._tier_roles.pop(guild_id, None)


async def _write(conn: aiosqlite.Connection, guild_id: int, key: str, value: Any, actor_id: int, now: float) -> None:
    """Store one of the server's keys as JSON (None: delete its row)."""
    if value is None:
        await conn.execute("DELETE FROM guild_settings WHERE guild_id = ? AND key = ?", (guild_id, key))
        return
    await conn.execute(
        "INSERT INTO guild_settings (guild_id, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (guild_id, key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by,"
        " set_at = excluded.set_at",
        (guild_id, key, json.dumps(value), actor_id, now),
    )
