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
from bot.filter_rules import GuildFilters, RuleChange
from bot.forget import Forgetting
from bot.guild_settings import GuildSettingsStore, ServerSettings
from bot.image_policy import SafetyRecords
from bot.metrics import BotMetrics
from bot.moderating import Moderating
from bot.open_replies import OpenReplies
from bot.preferences import PreferenceStore
from bot.refusal import Refusal
from bot.retention import Retention
from bot.scheduler.models import (
    Admission,
    DreamRequest,
    JobState,
    JobView,
    Member,
    Placement,
    QueueSummary,
    SchedulerStats,
)
from bot.scheduler.service import DreamService
from bot.settings import ConfigError, Settings, changed_keys, is_live, load_settings, with_live
from bot.styles import PLACEHOLDER, Style, StyleStore
from bot.text import clip
from bot.warnings import Warnings, WarnOutcome
from engine.pnginfo import model_label
from engine.types import MAX_SEED, EngineClient, GeneratedImage
from moderation.audit import AuditLog
from moderation.filter import PromptFilter, RuleError, RuleList, Verdict
from moderation.flag_reports import FlagReports, FlagStats
from moderation.flags import FlagStore
from moderation.prompt_log import BlockedPromptLog
from moderation.warnings import WarningStore

log = logging.getLogger(__name__)

STATS_PROMPT_WINDOW = 10_000
"""Most recent log entries counted for the blocked-prompts figure."""


class PromptBlocked(Refusal):
    """The prompt filter refused a prompt; the text names the rule's message, what matched, and the warning."""

    def __init__(self, verdict: Verdict, warning: WarnOutcome) -> None:
        where = "your negative prompt" if verdict.part == "negative" else "the prompt"
        super().__init__(
            f"🚫 {verdict.message or 'This prompt is not allowed here.'}\n"
            f"Matched{' in your negative prompt' if verdict.part == 'negative' else ''}: "
            f"“{clip(verdict.matched or '', 100)}” ({verdict.category}). Rephrase {where} and try again.\n"
            + warning.notice()
        )
        self.verdict = verdict
        self.warning = warning


def random_seeds(count: int) -> tuple[int, ...]:
    """``count`` consecutive seeds from a random start, so each image can be made again alone."""
    first = random.randint(0, MAX_SEED - count + 1)
    return tuple(range(first, first + count))


@dataclass(frozen=True)
class Reloaded:
    """What ``/admin reload`` found in the config file."""

    applied: list[str]
    """Changed keys now in effect."""
    at_restart: list[str]
    """Changed keys that take effect at the next restart."""
    categories: int
    """Filter categories, with the live rule changes on top."""


class Services:
    """Everything the Discord layer needs from the core, in one object."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        engine: EngineClient,
        dreams: DreamService,
        filters: GuildFilters,
        prompt_log: BlockedPromptLog,
        flags: FlagStore,
        alerts: AlertLog,
        guild_settings: GuildSettingsStore,
        *,
        config_path: Path | None = None,
        metrics: BotMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.dreams = dreams
        self.filters = filters
        self.prompt_log = prompt_log
        self.flags = flags
        self.flag_reports = FlagReports(db, settings.moderation.flags)
        self.audit = AuditLog(db)
        self.alerts = alerts
        self.guild_settings = guild_settings
        self.warnings = Warnings(WarningStore(db), dreams, self.server_settings)
        self.forgetting = Forgetting(db, dreams)
        self.open_replies = OpenReplies(db)
        self.preferences = PreferenceStore(db)
        self.styles = StyleStore(db, settings.styles)
        self.retention = Retention(db, prompt_log, guild_settings, filters,
                                   left_guild_days=settings.discord.left_guild_retention_days)  # fmt: skip
        self.operator_ids: frozenset[int] = frozenset(settings.discord.owner_ids)
        """The operator's user ids: configured, else the application's owners (filled in at connect)."""
        self.config_path = config_path
        self.metrics = metrics or BotMetrics()
        self.image_safety = SafetyRecords(self.metrics, self.flags)
        self.moderating = Moderating(dreams, flags, self.flag_reports, self.audit, prompt_log, self.warnings,
                                     self.metrics, self.server_settings, lambda: self.settings.moderation.flags)
        self.model = "simulated" if settings.engine.simulated else model_label(settings.engine.model or "")
        """The model name written into images' parameters."""

    def server_settings(self, guild_id: int | None) -> ServerSettings:
        """A server's effective settings (the config's defaults for no server)."""
        return self.guild_settings.effective(guild_id or 0)

    @property
    def safety_checker(self) -> str:
        """The classifier that checks every generated image; empty when images are not checked."""
        return self.engine.health().safety_checker

    # members

    async def dream(self, request: DreamRequest, *, age_restricted: bool = False) -> Admission:
        """Filter the prompt and the negative prompt with the server's filter (logging what it stops or notes), then
        submit the job. Re-rolls come here too, so their prompts meet today's rules. In an ``age_restricted``
        (NSFW) channel the server's ``nsfw_prompt_categories`` are let through.

        Raises :class:`PromptBlocked` or one of the scheduler's ``DreamError``.
        """
        if request.guild_id is None:
            raise Refusal("Images are made only in servers.")
        prompt_filter = await self.filters.get(request.guild_id)
        allowed = self.server_settings(request.guild_id).nsfw_prompt_categories if age_restricted else ()
        # In a thread: a long prompt takes milliseconds to check, which the event loop cannot spare.
        verdicts = await asyncio.to_thread(prompt_filter.check_request, request.prompt, request.negative_prompt,
                                           allowed)  # fmt: skip
        for verdict in verdicts:
            self.metrics.prompt_checked(verdict)
            if verdict.action != "allow":
                await self.prompt_log.record(request.guild_id, request.member.id, verdict)
        blocked = [verdict for verdict in verdicts if not verdict.allowed]
        if blocked:
            verdict = blocked[0]
            where = "negative prompt" if verdict.part == "negative" else "prompt"
            warning = await self.moderating.warn(request.guild_id, request.member.id,
                                      f"blocked {where} ({verdict.category})", "prompt")  # fmt: skip
            raise PromptBlocked(verdict, warning)
        with self.metrics.admission():
            return await self.dreams.submit(request)

    async def reroll(self, guild_id: int, job_id: int, member: Member, key: str, *,
                     age_restricted: bool = False) -> Admission:  # fmt: skip
        """The server's job's prompt and settings again with new seeds, as ``member``'s job (charged to them),
        checked as in :meth:`dream` (``age_restricted``: the channel asked from is)."""
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
            mode=job.mode,
            style=job.style,
        )
        return await self.dream(request, age_restricted=age_restricted)

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

    # admins

    async def change_filter_rule(self, guild_id: int, actor_id: int, category: str, rule: str, *, add: bool,
                                 into: RuleList = "keywords") -> None:  # fmt: skip
        """Add or remove a rule of the server's filter: it applies to the server's next prompt, and is stored
        for restarts and reloads. Other servers' filters do not change."""
        try:
            await self.filters.change(guild_id, RuleChange(actor_id, add, category, into, rule))
        except RuleError as exc:
            raise Refusal(f"That rule change cannot be made: {exc}") from None

    async def test_prompt(self, guild_id: int, prompt: str, negative: str = "") -> list[Verdict]:
        """What the server's filter says about a prompt and (when there is one) a negative prompt, in that order."""
        return await asyncio.to_thread((await self.filters.get(guild_id)).check_request, prompt, negative)

    async def add_style(self, guild_id: int, name: str, prompt: str, negative: str, actor_id: int) -> Style:
        """Add a style of the server's own, if its template and negative pass the server's prompt filter (as in
        an ordinary channel): a style the filter blocks would block, and warn, everyone who chose it."""
        for verdict in await self.test_prompt(guild_id, prompt.replace(PLACEHOLDER, " "), negative):
            if not verdict.allowed:
                raise Refusal(f"**{'negative' if verdict.part == 'negative' else 'prompt'}**: the server's filter "
                              f"blocks it ({verdict.category}: `{verdict.matched}`), so this style would block "
                              "every `/dream` that uses it.")  # fmt: skip
        return await self.styles.add(guild_id, name, prompt, negative, actor_id)

    async def reload_config(self) -> Reloaded:
        """Re-read the config file: apply the live settings (see :func:`bot.settings.is_live`) and rebuild the
        filter from it and the stored live rule changes; report what else changed and waits for a restart."""
        try:
            settings = await asyncio.to_thread(load_settings, self.config_path)
        except ConfigError as exc:
            raise Refusal(f"The config file has errors; nothing was reloaded.\n{exc}") from None
        changed = changed_keys(self.settings, settings)
        await self.filters.rebase(await asyncio.to_thread(PromptFilter.from_settings, settings.moderation))
        self.settings = with_live(self.settings, settings)
        self.guild_settings.reconfigure(self.settings)
        reloaded = Reloaded(
            applied=[key for key in changed if is_live(key)],
            at_restart=[key for key in changed if not is_live(key)],
            categories=len(self.filters.base.settings.categories),
        )
        log.info("config reloaded; applied: %s; at the next restart: %s", reloaded.applied, reloaded.at_restart)
        return reloaded

    async def stats(self, guild_id: int) -> tuple[SchedulerStats, FlagStats, int]:
        """The scheduler's figures, and the server's flag figures and prompts blocked in the last day."""
        since = self.dreams.clock.now() - 86400
        recent = await self.prompt_log.recent(guild_id, since=since, limit=STATS_PROMPT_WINDOW)
        blocked = sum(1 for entry in recent if entry.action == "block")
        return self.dreams.stats(guild_id), await self.flag_reports.stats(guild_id), blocked
