"""The one service the Discord layer calls: admission, fair dispatch to the engine, cancel, quotas, admin.

A thin facade over the scheduler's parts, each with one job: :mod:`.admission`
(idempotency, checks, quota charge, enqueue), :mod:`.dispatch` (batches on the
engine, job ends, cancel), :mod:`.recovery` (restart), :mod:`.estimates`
(positions, ETAs, figures) and :mod:`.admin` (tiers, overrides, bans, the
operator's switches), around the shared state of :mod:`.core`.

Everything is keyed by server (guild id): a job, ban, limit or audit entry of
another server is never found. Pause, the multiplier and server weights are
the operator's and apply to every server.

Everything here is plain asyncio on an injected clock; nothing imports discord.
"""

from __future__ import annotations

from dataclasses import replace

from bot.db import Database
from bot.scheduler.admin import Admin
from bot.scheduler.admission import Admitter
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings
from bot.scheduler.core import Core
from bot.scheduler.deliveries import Deliveries
from bot.scheduler.dispatch import Dispatcher
from bot.scheduler.errors import JobNotFound
from bot.scheduler.estimates import Estimates
from bot.scheduler.events import Subscription
from bot.scheduler.models import (
    Admission,
    AuditEntry,
    Ban,
    DreamRequest,
    JobState,
    JobView,
    Member,
    Placement,
    QueueSummary,
    QuotaStatus,
    SchedulerStats,
)
from bot.scheduler.modes import RelaxTerms, RelaxTermsOf
from bot.scheduler.policy import ServerTierRoles
from bot.scheduler.recovery import recover
from bot.scheduler.rows import read_view
from engine.types import EngineClient, GeneratedImage


def _no_server_tier_roles(guild_id: int) -> dict[str, tuple[int, ...]]:
    """No server has tier roles of its own: only the config's role ids give tiers."""
    return {}


class DreamService:
    """Fair scheduling, quotas and the job journal behind one facade.

    Construct, :meth:`subscribe` (to hear restart events too), then
    :meth:`start`; :meth:`close` on shutdown. The engine's own lifecycle
    (``start``/``close``) belongs to the caller. ``tier_roles`` gives each
    server's own tier roles (its admins' choice), on top of the config's; ``relax_terms`` each server's terms
    for relax jobs (default: the config's ``quotas.relax_weight`` and ``relax_max_jobs``).
    """

    def __init__(
        self,
        db: Database,
        engine: EngineClient,
        *,
        scheduler: SchedulerSettings | None = None,
        quotas: QuotaSettings | None = None,
        max_batch_images: int = 8,
        clock: Clock | None = None,
        tier_roles: ServerTierRoles | None = None,
        relax_terms: RelaxTermsOf | None = None,
    ) -> None:
        quotas = quotas or QuotaSettings()
        default_terms = RelaxTerms(quotas.relax_weight, quotas.relax_max_jobs)
        self._core = core = Core(db, engine, scheduler or SchedulerSettings(), quotas, max_batch_images,
                                 clock or SystemClock(), tier_roles or _no_server_tier_roles,
                                 relax_terms or (lambda guild_id: default_terms))  # fmt: skip
        self.clock = core.clock
        self.journal = core.journal
        self.deliveries = Deliveries(core.journal)
        self.quotas = core.quotas
        self._estimates = Estimates(core)
        self._admitter = Admitter(core, self._estimates)
        self._dispatcher = Dispatcher(core, self._estimates, self._admitter)
        self._admin = Admin(core)

    # lifecycle

    def subscribe(self) -> Subscription:
        """A stream of :class:`JobEvent` for every job (see :class:`EventKind` for what each kind carries)."""
        return self._core.events.subscribe()

    async def start(self) -> None:
        """Load the rules and quota state, recover queued and interrupted jobs, and start dispatching."""
        await recover(self._core, self._admitter, self._estimates)
        self._core.open = True
        self._dispatcher.start()

    async def close(self, grace_s: float | None = None) -> None:
        """Stop admitting, let the running batch finish (up to ``grace_s``, default ``shutdown_grace_s``), and stop.

        A batch still running after the grace period stays ``running`` in the
        journal, so the next start reports it interrupted and re-queues it.
        """
        self._core.open = False
        await self._dispatcher.stop(self._core.settings.shutdown_grace_s if grace_s is None else grace_s)
        await self.journal.close()

    # members

    async def submit(self, request: DreamRequest) -> Admission:
        """Admit a job, or raise a :class:`~bot.scheduler.errors.DreamError` saying why not.

        The same ``idempotency_key`` always answers with the first job (``duplicate=True``).
        Raises ``InvalidRequest``, ``Banned``, ``Paused``, ``OverTierLimit``,
        ``MemberQueueFull``, ``ServerQueueFull``, ``QueueFull``, ``QuotaExceeded`` or ``ServiceStopped``.
        """
        return await self._admitter.submit(request)

    async def cancel(self, guild_id: int, job_id: int, actor_id: int, *, moderator: bool = False) -> JobView:
        """Cancel a queued or running job of the server (refunded); return the job's final view.

        Members may cancel their own jobs, the server's moderators anyone's in
        the server (audited, with the state before and after); another server's
        job is "no such job". A job that had already finished is returned as it is.
        """
        return await self._dispatcher.cancel(guild_id, job_id, actor_id, moderator=moderator)

    async def cancel_member(self, guild_id: int, member_id: int, reason: str) -> list[JobView]:
        """Cancel every queued or running job of a member in the server (refunded, as a cancel is), telling them
        ``reason``; return the jobs as they ended."""
        return await self._dispatcher.cancel_member(guild_id, member_id, reason)

    def quota_status(self, guild_id: int, member: Member) -> QuotaStatus:
        """What the member has left in the server: burst, daily budget, next reset, tier and limits."""
        core = self._core
        now = core.clock.now()
        who = (guild_id, member.id)
        tier = core.policy.tier_of(guild_id, member)
        limits = core.policy.limits(who, tier)
        allowance = core.quotas.allowance(who, limits, now)
        ban = core.policy.ban_of(who, now)
        return QuotaStatus(
            tier=tier, limits=limits, burst_left=allowance.burst_left, next_image_at=allowance.next_image_at,
            burst_full_at=allowance.burst_full_at, daily_left=allowance.daily_left,
            daily_resets_at=allowance.daily_resets_at, queued_jobs=core.active_by_member[who],
            banned=ban is not None, banned_until=None if ban is None else ban.until,
            relax=core.relax_terms(guild_id), relax_jobs=core.relax_jobs(who),
        )

    # jobs

    async def job(self, guild_id: int, job_id: int) -> JobView:
        """The server's job with this internal id as it is now; another server's job is "no such job"."""
        return await self._core.view(guild_id, job_id)

    async def job_by_number(self, guild_id: int, number: int) -> JobView:
        """The server's job #number (the number members see)."""
        row = await self.journal.job_by_number(guild_id, number)
        if row is None:
            raise JobNotFound(number)
        job = self._core.active(guild_id, row["id"])
        return job.view if job is not None else read_view(row)

    async def job_by_key(self, guild_id: int, key: str) -> JobView | None:
        """The server's job admitted for ``key`` (its request's idempotency key); None if none was."""
        row = await self.journal.job_by_key(guild_id, key)
        return None if row is None else await self.job(guild_id, row["id"])

    def active_jobs(self, guild_id: int, member_id: int | None = None) -> list[JobView]:
        """The server's jobs queued or running (of one member, or everyone's), oldest first."""
        return [job.view for job in sorted(self._core.jobs.values(), key=lambda job: job.id)
                if job.guild_id == guild_id and (member_id is None or job.member_id == member_id)]

    async def member_jobs(self, guild_id: int, member_id: int, limit: int = 10) -> list[JobView]:
        """A member's newest jobs in the server first, in any state (as the journal has them)."""
        return [read_view(row) for row in await self.journal.member_jobs(guild_id, member_id, limit)]

    async def placement(self, guild_id: int, job_id: int) -> Placement:
        """Queue position and ETA of a job (position and ETA are None once it has finished)."""
        job = self._core.active(guild_id, job_id)
        if job is not None:
            return self._estimates.placement(job)
        view = await self.job(guild_id, job_id)
        return Placement(job_id, view.state, None, None, len(self._core.queue))

    def pending(self) -> int:
        """Jobs admitted and not ended, in every server together (the operator's view)."""
        return len(self._core.jobs)

    def queue_summary(self, guild_id: int) -> QueueSummary:
        """The server's queue at a glance, the time until the whole queue is done, and its length."""
        return self._estimates.queue_summary(guild_id)

    def stats(self, guild_id: int) -> SchedulerStats:
        """Figures for a server's admins: its queue and last hour; the shared GPU's duty cycle and speed."""
        return self._estimates.stats(guild_id)

    # results

    async def undelivered(self) -> list[JobView]:
        """Done jobs whose result was neither posted nor found undeliverable, and jobs that ended without images
        whose member was not told (after a restart: post these), oldest first.

        The bot's start is the operator's process acting for every server: it reads them server by server
        (one query lists the servers that have any), each with its images.
        """
        finished = []
        for guild_id in await self.deliveries.servers_undelivered():
            for row in await self.deliveries.undelivered(guild_id):
                view = read_view(row)
                finished.append(replace(view, images=await self.journal.images(guild_id, view.job_id)))
        return sorted(finished, key=lambda view: view.job_id)

    async def images(self, guild_id: int, job_id: int) -> tuple[GeneratedImage, ...]:
        """The stored images of the server's done job (empty once pruned after delivery, or another server's)."""
        return await self.journal.images(guild_id, job_id)

    async def record_told(self, guild_id: int, job_id: int) -> bool:
        """Record that the member of a failed, cancelled or interrupted job was told. True the first time."""
        return await self.deliveries.record_told(guild_id, job_id, self.clock.now())

    async def record_delivery(self, guild_id: int, job_id: int, message_id: int) -> bool:
        """Record the message that posted a done job's images. True the first time; False if already recorded."""
        delivered = await self.deliveries.record_delivery(guild_id, job_id, message_id, self.clock.now())
        if not delivered:
            view = await self.job(guild_id, job_id)
            if view.state is not JobState.DONE:
                raise ValueError(f"job {job_id} is {view.state}, not done: there is nothing to deliver")
        return delivered

    async def record_undeliverable(self, guild_id: int, job_id: int, reason: str) -> bool:
        """Record why a done job's result cannot be posted, so it is not tried again after a restart.

        True the first time; False if it was delivered or recorded undeliverable already.
        """
        return await self.deliveries.record_undeliverable(guild_id, job_id, reason)

    # a server's admins and moderators

    def tier_limits(self, guild_id: int, tier: str) -> dict[str, float]:
        """A tier's limits in a server now (config plus its live changes, before the multiplier)."""
        return self._core.policy.tier_limits(guild_id, tier)

    async def set_tier_limit(self, actor_id: int, guild_id: int, tier: str, limit: str,
                             value: float | None) -> dict[str, float]:  # fmt: skip
        """Change one limit of a tier live in a server (None reverts to the config value); returns its limits."""
        return await self._admin.set_tier_limit(actor_id, guild_id, tier, limit, value)

    async def set_member_override(self, actor_id: int, guild_id: int, member_id: int, limit: str,
                                  value: float | None) -> dict[str, float]:  # fmt: skip
        """Override one limit for one member in a server (absolute; None removes it); returns their overrides."""
        return await self._admin.set_member_override(actor_id, guild_id, member_id, limit, value)

    async def ban(self, actor_id: int, guild_id: int, member_id: int, *, until: float | None = None,
                  reason: str = "") -> Ban:  # fmt: skip
        """Bar a member from generating in a server (None: until lifted); cancels their queued jobs there."""
        return await self._admin.ban(actor_id, guild_id, member_id, until, reason)

    async def unban(self, actor_id: int, guild_id: int, member_id: int) -> bool:
        """Lift a member's ban in a server; False if they were not banned there."""
        return await self._admin.unban(actor_id, guild_id, member_id)

    def ban_of(self, guild_id: int, member_id: int) -> Ban | None:
        """The member's ban in the server if it is in force now (an expired one has lifted itself)."""
        return self._core.policy.ban_of((guild_id, member_id), self._core.clock.now())

    async def audit_log(self, guild_id: int, limit: int = 50) -> list[AuditEntry]:
        """The server's newest admin changes first (guild 0: the operator's changes to what servers share)."""
        return await self._core.tables.audit(guild_id, limit)

    # the operator

    async def set_multiplier(self, actor_id: int, value: float) -> float:
        """Scale every tier's burst, rate and daily budget in every server (0.01 to 100)."""
        return await self._admin.set_multiplier(actor_id, value)

    def server_weight(self, guild_id: int) -> float:
        """A server's share of the GPU (1 unless the operator changed it)."""
        return self._core.policy.server_weight(guild_id)

    async def set_server_weight(self, actor_id: int, guild_id: int, weight: float) -> float:
        """Set a server's share of the GPU against the others' (0.01 to 100; 1 by default)."""
        return await self._admin.set_server_weight(actor_id, guild_id, weight)

    async def pause(self, actor_id: int) -> None:
        """Run nothing new in any server (the running batch finishes); submissions are accepted or refused by
        config."""
        await self._admin.set_paused(actor_id, True)

    async def resume(self, actor_id: int) -> None:
        """Run jobs again."""
        await self._admin.set_paused(actor_id, False)
