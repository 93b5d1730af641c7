"""The services the cogs call, built once in :mod:`bot.app` and attached to the bot.

:class:`Services` composes the scheduler, the prompt filter and the flag store
into the few calls a cog makes, so that a cog callback is: validate, defer, one
call here, render. Nothing here imports discord.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from bot.alerts import AlertLog
from bot.db import Database
from bot.filter_rules import FilterRuleLog, RuleChange, replay
from bot.refusal import Refusal
from bot.scheduler.models import (
    Admission,
    DreamRequest,
    JobState,
    JobView,
    Member,
    Placement,
    QueueSummary,
    QuotaStatus,
    SchedulerStats,
)
from bot.scheduler.service import DreamService
from bot.settings import ConfigError, Settings, changed_keys, is_live, load_settings, with_live
from bot.text import clip
from engine.pnginfo import model_label
from engine.types import MAX_SEED, EngineClient, GeneratedImage
from moderation.filter import PromptFilter, RuleError, RuleList, Verdict
from moderation.flags import FlaggedImage, FlagOutcome, FlagStats, FlagStore, MemberHistory, ReviewItem
from moderation.prompt_log import BlockedPromptLog, LoggedPrompt

log = logging.getLogger(__name__)

STATS_PROMPT_WINDOW = 10_000
"""Most recent log entries counted for the blocked-prompts figure."""
HISTORY_JOBS = 10
"""Jobs shown in a member's history."""


class PromptBlocked(Refusal):
    """The prompt filter refused a prompt; the text names the rule's message and what matched."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(
            f"🚫 {verdict.message or 'This prompt is not allowed here.'}\n"
            f"Matched: “{clip(verdict.matched or '', 100)}” ({verdict.category}). Rephrase the prompt and try again."
        )
        self.verdict = verdict


def random_seeds(count: int) -> tuple[int, ...]:
    """``count`` consecutive seeds from a random start, so each image can be made again alone."""
    first = random.randint(0, MAX_SEED - count + 1)
    return tuple(range(first, first + count))


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
class Reloaded:
    """What ``/admin reload`` found in the config file."""

    applied: list[str]
    """Changed keys now in effect."""
    at_restart: list[str]
    """Changed keys that take effect at the next restart."""
    categories: int
    """Filter categories, with the live rule changes on top."""


@dataclass(frozen=True)
class ReviewAction:
    """What a moderator's review decision did, for the reply and the Discord side effects."""

    item: ReviewItem
    ban_until: float | None = None


class Services:
    """Everything the Discord layer needs from the core, in one object."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        engine: EngineClient,
        dreams: DreamService,
        prompt_filter: PromptFilter,
        prompt_log: BlockedPromptLog,
        flags: FlagStore,
        rule_log: FilterRuleLog,
        alerts: AlertLog,
        *,
        config_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.dreams = dreams
        self.prompt_filter = prompt_filter
        self.prompt_log = prompt_log
        self.flags = flags
        self.rule_log = rule_log
        self.alerts = alerts
        self.config_path = config_path
        self.model = "simulated" if settings.engine.simulated else model_label(settings.engine.model or "")
        """The model name written into images' parameters."""

    # members

    async def dream(self, request: DreamRequest) -> Admission:
        """Filter the prompt (logging what it stops or notes), then submit the job to the fair queue.

        Raises :class:`PromptBlocked` or one of the scheduler's ``DreamError``.
        """
        verdict = self.prompt_filter.check(request.prompt)
        if verdict.action != "allow":
            await self.prompt_log.record(request.member.id, verdict, guild_id=request.guild_id)
        if not verdict.allowed:
            raise PromptBlocked(verdict)
        return await self.dreams.submit(request)

    async def reroll(self, guild_id: int, job_id: int, member: Member, key: str) -> Admission:
        """The server's job's prompt and settings again with new seeds, as ``member``'s job (charged to them)."""
        job = await self.dreams.job(guild_id, job_id)
        request = DreamRequest(
            member=member,
            guild_id=guild_id,
            prompt=job.prompt,
            seeds=random_seeds(len(job.seeds)),
            idempotency_key=key,
            params=job.params,
            negative_prompt=job.negative_prompt,
            channel_id=job.channel_id,
        )
        return await self.dream(request)

    async def queue_view(self, guild_id: int, member_id: int) -> tuple[list[tuple[JobView, Placement]], QueueSummary]:
        """The member's queued and running jobs in the server with their places in the queue, and the server's
        summary of the queue."""
        jobs = [(job, await self.dreams.placement(guild_id, job.job_id))
                for job in self.dreams.active_jobs(guild_id, member_id)]
        # A job still being journaled has no place yet (for a moment); it is listed once it has one.
        return [(job, place) for job, place in jobs if place.position is not None], self.dreams.queue_summary(guild_id)

    async def cancel(self, guild_id: int, numbers: list[int], actor_id: int, *,
                     moderator: bool = False) -> list[JobView]:  # fmt: skip
        """Cancel the server's jobs by the numbers members see (refunded); each job as it ended (already finished
        ones as they were). Another server's job is "no such job"."""
        ended = []
        for number in numbers:
            job = await self.dreams.job_by_number(guild_id, number)
            ended.append(await self.dreams.cancel(guild_id, job.job_id, actor_id, moderator=moderator))
        return ended

    async def cancel_mine(self, guild_id: int, member_id: int, number: int | None = None) -> list[JobView]:
        """Cancel one of the member's jobs in the server by number, or (``number`` None) all their queued and
        running ones there."""
        if number is not None:
            return await self.cancel(guild_id, [number], member_id)
        jobs = self.dreams.active_jobs(guild_id, member_id)
        if not jobs:
            raise Refusal("You have no jobs waiting or running.")
        return [await self.dreams.cancel(guild_id, job.job_id, member_id) for job in jobs]

    async def finished_job(self, guild_id: int, job_id: int) -> tuple[JobView, tuple[GeneratedImage, ...]]:
        """The server's done job and its stored images; refuses when they are gone."""
        job = await self.dreams.job(guild_id, job_id)
        images = await self.dreams.images(guild_id, job_id) if job.state is JobState.DONE else ()
        if not images:
            raise Refusal("The images of this job are no longer stored; re-roll it to make new ones.")
        return job, images

    async def delete_result(self, guild_id: int, job_id: int, message_id: int, actor_id: int, *,
                            moderator: bool) -> JobView:  # fmt: skip
        """Allow the job's author or a moderator to delete its result message; a moderator's deletion of
        someone else's image is audited (with its review item, if it was flagged). Refuses anyone else."""
        job = await self.dreams.job(guild_id, job_id)
        if job.member_id == actor_id:
            return job
        if not moderator:
            raise Refusal("Only the member who made this image, or a moderator, can delete it.")
        item = await self.flags.item_for_message(message_id)
        await self.flags.audit(
            actor_id, "deleted_image", item_id=item.id if item else None, member_id=job.member_id,
            detail=f"job #{job.number}: deleted its result message {message_id}",
        )
        return job

    async def flag(
        self, guild_id: int, job_id: int, message_id: int, flagger_id: int, reason: str, note: str
    ) -> tuple[JobView, FlagOutcome]:
        """Record a member's flag on a posted image of the server; the outcome says whether to alert or hide now."""
        job = await self.dreams.job(guild_id, job_id)
        image = FlaggedImage(message_id, job.member_id, job.prompt, job.job_id, job.channel_id, job.guild_id)
        return job, await self.flags.flag(image, flagger_id, reason, note)

    # moderators

    async def review(self, guild_id: int, item_id: int, moderator_id: int, action: str, *,
                     ban_hours: float | None = None, note: str = "") -> ReviewAction:  # fmt: skip
        """Resolve a review item: ``dismiss``, ``remove`` (the image), ``warn`` or ``ban`` (the author, in the
        server ``guild_id``)."""
        if action == "dismiss":
            return ReviewAction(await self.flags.dismiss(item_id, moderator_id, note))
        resolution = {"remove": "removed", "warn": "warned", "ban": "banned"}[action]
        item = await self.flags.action(item_id, moderator_id, resolution, note)  # type: ignore[arg-type]
        if action != "ban":
            return ReviewAction(item)
        ban = await self.ban(guild_id, moderator_id, item.author_id, ban_hours,
                             note or f"flagged image (review #{item.id})")
        return ReviewAction(item, ban)

    async def ban(self, guild_id: int, moderator_id: int, member_id: int, hours: float | None,
                  reason: str) -> float | None:  # fmt: skip
        """Bar a member from generating in the server for ``hours`` (None: until lifted); return when it ends."""
        until = None if hours is None else self.dreams.clock.now() + hours * 3600
        ban = await self.dreams.ban(moderator_id, guild_id, member_id, until=until, reason=reason)
        return ban.until

    # admins

    async def change_filter_rule(self, actor_id: int, category: str, rule: str, *, add: bool,
                                 into: RuleList = "keywords") -> None:  # fmt: skip
        """Add or remove a filter rule: it applies to the next prompt, and is stored for restarts and reloads."""
        change = RuleChange(actor_id, add, category, into, rule)
        try:
            # Off the event loop: rebuilding the matching automaton takes a while with many rules.
            changed = await asyncio.to_thread(change.apply, self.prompt_filter)
        except RuleError as exc:
            raise Refusal(f"That rule change cannot be made: {exc}") from None
        await self.rule_log.record(change)
        self.prompt_filter = changed

    async def reload_config(self) -> Reloaded:
        """Re-read the config file: apply the live settings (see :func:`bot.settings.is_live`) and rebuild the
        filter from it and the stored live rule changes; report what else changed and waits for a restart."""
        try:
            settings = await asyncio.to_thread(load_settings, self.config_path)
        except ConfigError as exc:
            raise Refusal(f"The config file has errors; nothing was reloaded.\n{exc}") from None
        changed = changed_keys(self.settings, settings)
        base = await asyncio.to_thread(PromptFilter.from_settings, settings.moderation)
        self.prompt_filter = replay(base, await self.rule_log.changes())
        self.settings = with_live(self.settings, settings)
        reloaded = Reloaded(
            applied=[key for key in changed if is_live(key)],
            at_restart=[key for key in changed if not is_live(key)],
            categories=len(self.prompt_filter.settings.categories),
        )
        log.info("config reloaded; applied: %s; at the next restart: %s", reloaded.applied, reloaded.at_restart)
        return reloaded

    async def stats(self, guild_id: int) -> tuple[SchedulerStats, FlagStats, int]:
        """The scheduler's figures for the server, the flag store's, and how many prompts were blocked in the
        last day."""
        since = self.dreams.clock.now() - 86400
        recent = await self.prompt_log.recent(limit=STATS_PROMPT_WINDOW)
        blocked = sum(1 for entry in recent if entry.action == "block" and entry.created_at >= since)
        return self.dreams.stats(guild_id), await self.flags.stats(), blocked

    async def member_history(self, guild_id: int, member: Member) -> MemberRecord:
        """A member's recent jobs in the server, flag record, recent blocked or noted prompts, and quota standing."""
        return MemberRecord(
            jobs=await self.dreams.member_jobs(guild_id, member.id, limit=HISTORY_JOBS),
            flags=await self.flags.member_history(member.id),
            prompts=await self.prompt_log.recent(member_id=member.id, limit=10),
            quota=self.dreams.quota_status(guild_id, member),
        )
