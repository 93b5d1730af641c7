"""What a server's moderators, and the bot's own checks, do about members: flags, reviews, warnings, bans.

Part of :class:`~bot.services.Services` (its ``moderating``): each call acts on
one server's records only. Nothing here imports discord.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.guild_settings import ServerSettings
from bot.metrics import BotMetrics
from bot.refusal import Refusal
from bot.scheduler.models import JobView, Member, QuotaStatus
from bot.scheduler.service import DreamService
from bot.warnings import Warnings, WarnOutcome
from moderation.audit import AuditLog
from moderation.config import FlagSettings
from moderation.flag_reports import FlagReports, MemberHistory
from moderation.flags import FlaggedImage, FlagOutcome, FlagStore, ReviewItem
from moderation.prompt_log import BlockedPromptLog, LoggedPrompt
from moderation.warnings import WarningSource

HISTORY_JOBS = 10
"""Jobs shown in a member's history."""


@dataclass(frozen=True)
class MemberRecord:
    """What ``/mod history`` shows of a member."""

    jobs: list[JobView]
    """Newest first."""
    flags: MemberHistory
    prompts: list[LoggedPrompt]
    """Recent blocked or noted prompts, newest first."""
    quota: QuotaStatus


@dataclass(frozen=True)
class ReviewAction:
    """What a moderator's review decision did, for the reply and the Discord side effects."""

    item: ReviewItem
    ban_until: float | None = None
    warning: WarnOutcome | None = None
    """The warning an actioned item gave its author."""


class Moderating:
    """Flags, the review queue, warnings, bans and a member's record, server by server."""

    def __init__(self, dreams: DreamService, flags: FlagStore, flag_reports: FlagReports, audit: AuditLog,
                 prompt_log: BlockedPromptLog, warnings: Warnings, metrics: BotMetrics,
                 server_settings: Callable[[int | None], ServerSettings],
                 flag_settings: Callable[[], FlagSettings]) -> None:  # fmt: skip
        self.dreams = dreams
        self.flags = flags
        self.flag_reports = flag_reports
        self.audit = audit
        self.prompt_log = prompt_log
        self.warnings = warnings
        self.metrics = metrics
        self.server_settings = server_settings
        self._flag_settings = flag_settings
        """The config's flag settings, read at each flag: a reload may change them."""

    async def delete_result(self, guild_id: int, job_id: int, message_id: int, actor_id: int, *,
                            moderator: bool) -> JobView:  # fmt: skip
        """Allow the job's author or a moderator to delete its result message; a moderator's deletion of
        someone else's image is audited (with its review item, if it was flagged). Refuses anyone else."""
        job = await self.dreams.job(guild_id, job_id)
        if job.member_id == actor_id:
            return job
        if not moderator:
            raise Refusal("Only the member who made this image, or a moderator, can delete it.")
        item = await self.flags.item_for_message(guild_id, message_id)
        await self.audit.record(
            guild_id, actor_id, "deleted_image", item_id=item.id if item else None, member_id=job.member_id,
            detail=f"job #{job.number}: deleted its result message {message_id}",
        )
        return job

    async def flag(
        self, guild_id: int, job_id: int, message_id: int, flagger_id: int, reason: str, note: str
    ) -> tuple[JobView, FlagOutcome]:
        """Record a member's flag on an image posted in the server; the outcome says whether to alert or hide now."""
        job = await self.dreams.job(guild_id, job_id)
        image = FlaggedImage(message_id, guild_id, job.member_id, job.prompt, job.job_id, job.channel_id)
        server = self.server_settings(guild_id)
        thresholds = self._flag_settings().model_copy(
            update={"alert_score": server.alert_score, "hide_score": server.hide_score}
        )
        outcome = await self.flags.flag(image, flagger_id, reason, note, thresholds=thresholds)
        self.metrics.flagged(reason, outcome.counted)
        return job, outcome

    async def review(self, guild_id: int, item_id: int, moderator_id: int, action: str, *,
                     ban_hours: float | None = None, note: str = "") -> ReviewAction:  # fmt: skip
        """Resolve one of the server's review items: ``dismiss``, ``remove`` (the image), ``warn`` or ``ban``."""
        if action == "dismiss":
            item = await self.flags.dismiss(guild_id, item_id, moderator_id, note)
        else:
            resolution = {"remove": "removed", "warn": "warned", "ban": "banned"}[action]
            item = await self.flags.action(guild_id, item_id, moderator_id, resolution, note)  # type: ignore[arg-type]
        self.metrics.reviewed(action)
        if action == "dismiss":
            return ReviewAction(item)
        ban: float | None = None
        if action == "ban":  # first, so that the moderator's ban is the one in force, not an automatic one
            ban = await self.ban(guild_id, moderator_id, item.author_id, ban_hours,
                                 note or f"flagged image (review #{item.id})")
        warning = await self.warn(guild_id, item.author_id, f"flagged image {item.resolution} (review #{item.id})",
                                  "flag", given_by=moderator_id)  # fmt: skip
        return ReviewAction(item, ban, warning)

    async def warn(self, guild_id: int, member_id: int, reason: str, source: WarningSource, *,
                   given_by: int | None = None, job_id: int | None = None,
                   audit: tuple[str, str] | None = None) -> WarnOutcome:  # fmt: skip
        """Give a member a warning in the server (a blocked prompt, a withheld image, an actioned flag); at the
        server's count within its window it bans them for its ban time. ``outcome.banned`` says whether it did,
        ``outcome.notice()`` what to tell the member; the moderators' channel hears of a ban. A job's warning
        (``job_id``) is given once, however often it is asked for; ``audit`` (an action and its detail) is
        recorded with it."""
        return await self.warnings.warn(guild_id, member_id, reason, source, given_by=given_by, job_id=job_id,
                                        audit=audit)

    async def ban(self, guild_id: int, moderator_id: int, member_id: int, hours: float | None,
                  reason: str) -> float | None:  # fmt: skip
        """Bar a member from generating in the server for ``hours`` (None: until lifted); return when it ends."""
        until = None if hours is None else self.dreams.clock.now() + hours * 3600
        ban = await self.dreams.ban(moderator_id, guild_id, member_id, until=until, reason=reason)
        return ban.until

    async def member_history(self, guild_id: int, member: Member) -> MemberRecord:
        """A member's recent jobs, and their flag record, recent blocked or noted prompts in the server, and quota."""
        return MemberRecord(
            jobs=await self.dreams.member_jobs(guild_id, member.id, limit=HISTORY_JOBS),
            flags=await self.flag_reports.member_history(guild_id, member.id),
            prompts=await self.prompt_log.recent(guild_id, member_id=member.id, limit=10),
            quota=self.dreams.quota_status(guild_id, member),
        )
