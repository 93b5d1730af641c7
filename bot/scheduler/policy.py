"""The admin-tunable rules: per server, tiers (config plus live changes), member overrides and bans; for all
servers (the operator's), the multiplier, pause and each server's weight.

This is plain in-memory state; :class:`~bot.scheduler.service.DreamService`
validates a change, writes it and its audit record in one transaction, and only
then applies it here, so what is in memory is always what is on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from bot.scheduler.config import LIMIT_NAMES, QuotaSettings
from bot.scheduler.errors import UnknownTier
from bot.scheduler.models import Ban, EffectiveLimits, Member
from bot.scheduler.quotas import Who

Limits = dict[str, float | int]

ServerTierRoles = Callable[[int], Mapping[str, tuple[int, ...]]]
"""A server's own tier roles: guild id to (tier name to the ids of the server's roles that give it)."""

DEFAULT_SERVER_WEIGHT = 1.0

_SCALED = ("burst", "rate_per_hour", "daily_images")
"""The limits the global multiplier scales (the tap); the rest shape requests and are not scaled."""


class Policy:
    """Resolves a member's effective limits and holds the live admin changes."""

    def __init__(self, settings: QuotaSettings, server_tier_roles: ServerTierRoles) -> None:
        self.settings = settings
        self._server_tier_roles = server_tier_roles
        self._config_tiers: dict[str, Limits] = {
            name: tier.model_dump(include=set(LIMIT_NAMES)) for name, tier in settings.tiers.items()
        }
        self.tier_changes: dict[tuple[int, str], Limits] = {}
        """Admins' live changes, by (guild id, tier)."""
        self.overrides: dict[Who, Limits] = {}
        self.bans: dict[Who, Ban] = {}
        self.server_weights: dict[int, float] = {}
        self.multiplier = settings.multiplier
        self.paused = False

    @property
    def tier_names(self) -> list[str]:
        return list(self._config_tiers)

    def tier_of(self, guild_id: int, member: Member) -> str:
        """The member's tier in the server from their role ids: the config's tier roles, or the server's own."""
        return self.settings.tier_for_roles(member.role_ids, self._server_tier_roles(guild_id))

    def server_weight(self, guild_id: int) -> float:
        """The server's share of the GPU (the operator's setting, 1 by default)."""
        return self.server_weights.get(guild_id, DEFAULT_SERVER_WEIGHT)

    def tier_limits(self, guild_id: int, tier: str) -> Limits:
        """A tier's limits in a server: config with its admins' live changes on top (before the multiplier)."""
        if tier not in self._config_tiers:
            raise UnknownTier(tier, self.tier_names)
        return {**self._config_tiers[tier], **self.tier_changes.get((guild_id, tier), {})}

    def limits(self, who: Who, tier: str) -> EffectiveLimits:
        """What the member may do now in ``tier`` in the server (an unknown tier, say from an old job, falls back to
        the default)."""
        if tier not in self._config_tiers:
            tier = self.settings.default_tier
        values = self.tier_limits(who[0], tier)
        for name in _SCALED:
            values[name] = values[name] * self.multiplier
        values["burst"] = max(1, math.floor(values["burst"]))
        values["daily_images"] = math.floor(values["daily_images"])
        # Overrides are absolute: an admin who gives one member 50 images a day means 50, whatever the tap.
        values.update(self.overrides.get(who, {}))
        return EffectiveLimits(tier=tier, **values)

    def ban_of(self, who: Who, now: float) -> Ban | None:
        """The member's ban in the server if it is in force at ``now``."""
        ban = self.bans.get(who)
        return ban if ban is not None and ban.active(now) else None

    def set_tier_change(self, guild_id: int, tier: str, name: str, value: float | None) -> None:
        changes = self.tier_changes.setdefault((guild_id, tier), {})
        if value is None:
            changes.pop(name, None)
        else:
            changes[name] = value

    def set_override(self, who: Who, name: str, value: float | None) -> None:
        overrides = self.overrides.setdefault(who, {})
        if value is None:
            overrides.pop(name, None)
            if not overrides:
                del self.overrides[who]
        else:
            overrides[name] = value
