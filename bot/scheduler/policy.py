"""The admin-tunable rules: tiers (config plus live changes), member overrides, bans, the multiplier, pause.

This is plain in-memory state; :class:`~bot.scheduler.service.DreamService`
validates a change, writes it and its audit record in one transaction, and only
then applies it here, so what is in memory is always what is on disk.
"""

from __future__ import annotations

import math

from bot.scheduler.config import LIMIT_NAMES, QuotaSettings
from bot.scheduler.errors import UnknownTier
from bot.scheduler.models import Ban, EffectiveLimits, Member

Limits = dict[str, float | int]

_SCALED = ("burst", "rate_per_hour", "daily_images")
"""The limits the global multiplier scales (the tap); the rest shape requests and are not scaled."""


class Policy:
    """Resolves a member's effective limits and holds the live admin changes."""

    def __init__(self, settings: QuotaSettings) -> None:
        self.settings = settings
        self._config_tiers: dict[str, Limits] = {
            name: tier.model_dump(include=set(LIMIT_NAMES)) for name, tier in settings.tiers.items()
        }
        self.tier_changes: dict[str, Limits] = {}
        self.overrides: dict[int, Limits] = {}
        self.bans: dict[int, Ban] = {}
        self.multiplier = settings.multiplier
        self.paused = False

    @property
    def tier_names(self) -> list[str]:
        return list(self._config_tiers)

    def tier_of(self, member: Member) -> str:
        """The member's tier from their roles."""
        return self.settings.tier_for_roles(member.role_ids, member.role_names)

    def tier_limits(self, tier: str) -> Limits:
        """A tier's limits: config with admins' live changes on top (before the multiplier)."""
        if tier not in self._config_tiers:
            raise UnknownTier(tier, self.tier_names)
        return {**self._config_tiers[tier], **self.tier_changes.get(tier, {})}

    def limits(self, member_id: int, tier: str) -> EffectiveLimits:
        """What ``member_id`` may do now in ``tier`` (an unknown tier, say from an old job, falls back to the default)."""
        if tier not in self._config_tiers:
            tier = self.settings.default_tier
        values = self.tier_limits(tier)
        for name in _SCALED:
            values[name] = values[name] * self.multiplier
        values["burst"] = max(1, math.floor(values["burst"]))
        values["daily_images"] = math.floor(values["daily_images"])
        # Overrides are absolute: an admin who gives one member 50 images a day means 50, whatever the tap.
        values.update(self.overrides.get(member_id, {}))
        return EffectiveLimits(tier=tier, **values)

    def ban_of(self, member_id: int, now: float) -> Ban | None:
        """The member's ban if it is in force at ``now``."""
        ban = self.bans.get(member_id)
        return ban if ban is not None and ban.active(now) else None

    def set_tier_change(self, tier: str, name: str, value: float | None) -> None:
        changes = self.tier_changes.setdefault(tier, {})
        if value is None:
            changes.pop(name, None)
        else:
            changes[name] = value

    def set_override(self, member_id: int, name: str, value: float | None) -> None:
        overrides = self.overrides.setdefault(member_id, {})
        if value is None:
            overrides.pop(name, None)
            if not overrides:
                del self.overrides[member_id]
        else:
            overrides[name] = value
