"""Warnings that escalate to timed bans: the one call for whatever earns a member a warning.

:meth:`Warnings.warn` records the warning under the server's rule (its own
settings over the config's) and, when it brings an automatic ban, bans the
member through the scheduler, which checks bans at admission against its clock:
the ban lifts itself when its time is up. Listeners (the Discord layer's
notice to the moderators' channel) then hear of the ban. Nothing here imports
discord.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.guild_settings import ServerSettings
from bot.scheduler.models import Ban
from bot.scheduler.service import DreamService
from moderation.warnings import Escalation, MemberWarning, Warned, WarningSource, WarningStore

log = logging.getLogger(__name__)

AUTOMATIC = 0
"""The actor id of the bot's own bans (no Discord user has id 0)."""
SHOWN = 25
"""Warnings ``/mod warnings`` lists, newest first."""


def duration(hours: float) -> str:
    """``hours`` as people say it: "45 minutes", "1 hour", "36 hours", "7 days"."""
    if hours < 1:
        minutes = max(1, round(hours * 60))
        return f"{minutes} minute{'s' * (minutes != 1)}"
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} days"
    return f"{hours:g} hour{'s' * (hours != 1)}"


def warning_count(warnings: int) -> str:
    """How many warnings, in words: "1 warning", "3 warnings"."""
    return f"{warnings} warning{'s' * (warnings != 1)}"


@dataclass(frozen=True)
class WarnOutcome:
    """What :meth:`Warnings.warn` did: the warning, its count under the server's rule, and any automatic ban."""

    warned: Warned
    already_banned: bool
    """The member was banned already, so this warning brought no new ban."""

    @property
    def warning(self) -> MemberWarning:
        return self.warned.warning

    @property
    def banned(self) -> bool:
        """Whether this warning brought an automatic ban."""
        return self.warned.banned

    def notice(self) -> str:
        """What the member is told: the warning's count toward a ban, or the ban it brought and for how long."""
        rule, counted = self.warned.escalation, self.warned.counted
        window, ban = duration(rule.window_hours), duration(rule.ban_hours)
        if self.banned:
            return (f"⛔ That is {warning_count(counted)} within {window} in this server: you are banned from "
                    f"generating images here for {ban}. The ban lifts itself then.")  # fmt: skip
        if self.already_banned:
            return "⚠️ This adds a warning to your record in this server."
        return (f"⚠️ This is warning {counted} of {rule.warnings_to_ban} within {window} in this server; at "
                f"{rule.warnings_to_ban} you are banned from generating images here for {ban}.")  # fmt: skip

    def moderators_notice(self) -> str:
        """What the moderators' channel is told of an automatic ban."""
        rule, warning = self.warned.escalation, self.warning
        return (f"⛔ <@{warning.member_id}> was banned from generating for {duration(rule.ban_hours)} "
                f"automatically: {warning_count(self.warned.counted)} within {duration(rule.window_hours)} "
                f"(the last: {warning.reason}). `/mod warnings` lists them; `/mod unban` lifts the ban.")  # fmt: skip


@dataclass(frozen=True)
class WarningRecord:
    """What ``/mod warnings`` shows of a member in one server."""

    warnings: list[MemberWarning]
    """Newest first, cleared ones included."""
    counting: int
    """Warnings that count toward the next automatic ban now."""
    rule: Escalation
    ban: Ban | None
    """The member's ban in force, if any."""


BanListener = Callable[[WarnOutcome], Awaitable[None]]


class Warnings:
    """Members' warnings and the automatic bans they bring, per server."""

    def __init__(self, store: WarningStore, dreams: DreamService,
                 server_settings: Callable[[int], ServerSettings]) -> None:  # fmt: skip
        self.store = store
        self._dreams = dreams
        self._server_settings = server_settings
        self._listeners: list[BanListener] = []
        # One warning at a time, so two at once cannot both reach the count and ban twice.
        self._lock = asyncio.Lock()

    def on_ban(self, listener: BanListener) -> None:
        """Call ``listener`` after every automatic ban (its failure is logged, never the warning's)."""
        self._listeners.append(listener)

    def rule(self, guild_id: int) -> Escalation:
        """The server's escalation rule now."""
        server = self._server_settings(guild_id)
        return Escalation(server.warnings_to_ban, server.warning_window_hours, server.auto_ban_hours)

    async def warn(self, guild_id: int, member_id: int, reason: str, source: WarningSource, *,
                   given_by: int | None = None, job_id: int | None = None,
                   audit: tuple[str, str] | None = None) -> WarnOutcome:  # fmt: skip
        """Warn a member in a server; at the server's count within its window, ban them for its ban time (unless
        a ban is in force already) and tell the listeners. A job (``job_id``) warns once: asked again, its
        warning is returned (``outcome.warned.repeated``), and its ban carried out only if it is not in force (the
        bot stopped in between). ``audit`` is recorded with the warning, once."""
        async with self._lock:
            already = self._dreams.ban_of(guild_id, member_id) is not None
            warned = await self.store.add(guild_id, member_id, reason, source, given_by=given_by, job_id=job_id,
                                          rule=self.rule(guild_id), may_ban=not already, now=self._dreams.clock.now(),
                                          audit=audit)
            if warned.banned and not already:  # a repeated warning's ban may be in force: not banned, nor told, twice
                await self._dreams.ban(AUTOMATIC, guild_id, member_id, until=warned.warning.banned_until,
                                       reason=f"{warning_count(warned.counted)} (the last: {reason})")  # fmt: skip
        outcome = WarnOutcome(warned, already)
        if outcome.banned and not already:
            for listener in self._listeners:
                try:
                    await listener(outcome)
                except Exception:  # the ban stands; only the notice about it failed
                    log.exception("a listener failed on the automatic ban of %s in %s", member_id, guild_id)
        return outcome

    async def record(self, guild_id: int, member_id: int) -> WarningRecord:
        """A member's warnings in a server, how many count now, the rule, and their ban in force."""
        rule = self.rule(guild_id)
        return WarningRecord(
            warnings=await self.store.of_member(guild_id, member_id, limit=SHOWN),
            counting=await self.store.counting(guild_id, member_id, rule, now=self._dreams.clock.now()),
            rule=rule,
            ban=self._dreams.ban_of(guild_id, member_id),
        )

    async def clear(self, guild_id: int, warning_id: int, moderator_id: int, note: str = "") -> MemberWarning:
        """Clear one of the server's warnings (audited); a ban it brought stays."""
        return await self.store.clear(guild_id, warning_id, moderator_id, note, now=self._dreams.clock.now())
