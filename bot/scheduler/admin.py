"""Admin changes: a server's tiers, member overrides and bans; the operator's multiplier, server weights and pause.

Each change is validated, written with its audit record in one transaction,
and only then applied in memory, so what is in memory is always what is on
disk. A server's changes are audited under its guild id; the operator's, which
every server shares, under guild 0.
"""

from __future__ import annotations

import math

from bot.scheduler.config import check_limit, check_multiplier, check_server_weight
from bot.scheduler.core import OPERATOR, Core
from bot.scheduler.errors import InvalidLimit
from bot.scheduler.models import Ban, JobState


class Admin:
    """The admins' and the operator's changes to the rules."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def set_tier_limit(self, actor_id: int, guild_id: int, tier: str, limit: str,
                             value: float | None) -> dict[str, float]:  # fmt: skip
        """Change one limit of a tier live in a server (None reverts to the config value); returns the tier's
        limits there."""
        core = self.core
        checked = check_limit(limit, value)
        before = core.policy.tier_limits(guild_id, tier)[limit]
        after = getattr(core.policy.settings.tiers[tier], limit) if checked is None else checked
        await core.tables.set_tier_limit(
            guild_id, tier, limit, checked,
            core.audit(guild_id, actor_id, "set_tier_limit", f"tier {tier}: {limit}", before, after),
        )
        core.policy.set_tier_change(guild_id, tier, limit, checked)
        return core.policy.tier_limits(guild_id, tier)

    async def set_member_override(self, actor_id: int, guild_id: int, member_id: int, limit: str,
                                  value: float | None) -> dict[str, float]:  # fmt: skip
        """Override one limit for one member in a server (absolute; None removes it); returns their overrides."""
        core = self.core
        checked = check_limit(limit, value)
        who = (guild_id, member_id)
        before = core.policy.overrides.get(who, {}).get(limit)
        await core.tables.set_override(
            guild_id, member_id, limit, checked,
            core.audit(guild_id, actor_id, "set_override", f"member {member_id}: {limit}", before, checked),
        )
        core.policy.set_override(who, limit, checked)
        return dict(core.policy.overrides.get(who, {}))

    async def ban(self, actor_id: int, guild_id: int, member_id: int, until: float | None, reason: str) -> Ban:
        """Bar a member from generating in a server (``until`` unix seconds, None for no expiry); cancels their
        queued jobs there."""
        core = self.core
        now = core.clock.now()
        if until is not None and (not math.isfinite(until) or until <= now):
            raise InvalidLimit("until", "must be a time in the future")
        who = (guild_id, member_id)
        ban = Ban(guild_id=guild_id, member_id=member_id, until=until, reason=reason, banned_by=actor_id,
                  banned_at=now)
        previous = core.policy.bans.get(who)
        await core.tables.set_ban(
            ban, core.audit(guild_id, actor_id, "ban", f"member {member_id}", _ban_record(previous), _ban_record(ban))
        )
        core.policy.bans[who] = ban
        queued = [job for job in core.jobs.values() if job.who == who and job.id in core.queue]
        core.account()
        for job in queued:
            core.queue.remove(job.id)
        if queued:
            await core.end([(job, JobState.CANCELLED, "cancelled: you were banned", None) for job in queued])
        return ban

    async def unban(self, actor_id: int, guild_id: int, member_id: int) -> bool:
        """Lift a member's ban in a server; False if they were not banned there."""
        core = self.core
        who = (guild_id, member_id)
        previous = core.policy.bans.get(who)
        if previous is None:
            return False
        await core.tables.lift_ban(
            guild_id, member_id,
            core.audit(guild_id, actor_id, "unban", f"member {member_id}", _ban_record(previous), None),
        )
        del core.policy.bans[who]
        return True

    async def set_multiplier(self, actor_id: int, value: float) -> float:
        """The operator's tap: scale every tier's burst, rate and daily budget in every server (0.01 to 100)."""
        core = self.core
        value = check_multiplier(value)
        before = core.policy.multiplier
        await core.tables.set_switch(
            "multiplier", repr(value), core.audit(OPERATOR, actor_id, "set_multiplier", "multiplier", before, value)
        )
        core.policy.multiplier = value
        return value

    async def set_server_weight(self, actor_id: int, guild_id: int, weight: float) -> float:
        """The operator's share of the GPU for a server against the others' (0.01 to 100; 1 by default).

        Applies to the server's jobs from their next dispatch on.
        """
        core = self.core
        weight = check_server_weight(weight)
        before = core.policy.server_weight(guild_id)
        await core.tables.set_server_weight(
            guild_id, weight,
            core.audit(OPERATOR, actor_id, "set_server_weight", f"server {guild_id}", before, weight),
        )
        core.policy.server_weights[guild_id] = weight
        return weight

    async def set_paused(self, actor_id: int, paused: bool) -> None:
        """The operator's switch: run nothing new in any server (the running batch finishes), or run again."""
        core = self.core
        before = core.policy.paused
        await core.tables.set_switch(
            "paused", "1" if paused else "0",
            core.audit(OPERATOR, actor_id, "pause" if paused else "resume", "queue", before, paused),
        )
        core.account()
        core.policy.paused = paused
        core.wake.set()


def _ban_record(ban: Ban | None) -> dict[str, object] | None:
    return None if ban is None else {"until": ban.until, "reason": ban.reason, "by": ban.banned_by}
