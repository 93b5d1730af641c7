"""The one service the Discord layer calls: admission, fair dispatch to the engine, cancel, quotas, admin.

Life of a job: :meth:`DreamService.submit` checks the request, ban, pause,
tier limits, queue caps and quota (charging it), and waits for the job row to
be group-committed; only then is the job in the fair queue and the member told
their position. The dispatcher takes batches from the fair queue, marks them
running in the journal, hands them to the engine and journals each outcome
before announcing it. Failures and cancellations refund the quota; an engine
crash re-queues a job at the head of its member's queue a configured number of
times. On start, the journal's queued jobs are re-queued in their original
order and running ones are reported interrupted (and re-queued while they have
attempts left).

Everything here is plain asyncio on an injected clock; nothing imports discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

import aiosqlite

from bot.db import Database
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings, check_limit, check_multiplier, check_server_weight
from bot.scheduler.errors import (
    Banned,
    DreamError,
    InvalidLimit,
    InvalidRequest,
    JobNotFound,
    MemberQueueFull,
    NotYourJob,
    OverTierLimit,
    Paused,
    QueueFull,
    ServiceStopped,
)
from bot.scheduler.events import EventHub, EventKind, JobEvent, Subscription
from bot.scheduler.fairqueue import FairQueue, QueuedJob
from bot.scheduler.journal import JobEnd, Journal, NewJob, Recovered, job_view, read_view, salvage_view
from bot.scheduler.models import (
    Admission,
    AuditEntry,
    Ban,
    DreamRequest,
    EffectiveLimits,
    FinishedJob,
    JobState,
    JobView,
    Member,
    Placement,
    QueueSummary,
    QuotaStatus,
    SchedulerStats,
)
from bot.scheduler.policy import Policy
from bot.scheduler.quotas import QuotaBook, Who
from engine.types import (
    EngineClient,
    GeneratedImage,
    JobRequest,
    JobResult,
    Outcome,
    Progress,
    RequestError,
)

log = logging.getLogger(__name__)

COST_PER_IMAGE_STEP = 512 * 512 // 4096
"""Cost units of one 512x512 image step (see ``JobRequest.cost``)."""
HOUR = 3600.0
INTERRUPTED = "interrupted by a restart"
OPERATOR = 0
"""The guild id of audit entries for the operator's changes to what every server shares."""


@dataclass(eq=False)
class _Job:
    """A job the service is responsible for (admitting, queued or running)."""

    view: JobView
    key: str | None
    tier: str
    request: JobRequest
    entry: QueuedJob
    cancel_reason: str | None = None
    """Set when a cancel arrives while the job is being handed to the engine or running."""
    announced_position: int | None = None
    ended: asyncio.Future[JobView] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def id(self) -> int:
        return self.view.job_id

    @property
    def member_id(self) -> int:
        return self.view.member_id

    @property
    def guild_id(self) -> int:
        return self.view.guild_id

    @property
    def who(self) -> Who:
        return self.view.guild_id, self.view.member_id


class DreamService:
    """Fair scheduling, quotas and the job journal behind one facade.

    Construct, :meth:`subscribe` (to hear restart events too), then
    :meth:`start`; :meth:`close` on shutdown. The engine's own lifecycle
    (``start``/``close``) belongs to the caller.
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
    ) -> None:
        scheduler = scheduler or SchedulerSettings()
        quotas = quotas or QuotaSettings()
        self.settings = scheduler
        self.engine = engine
        self.clock = clock or SystemClock()
        self.max_batch_images = max_batch_images
        self.policy = Policy(quotas)
        self.quotas = QuotaBook(quotas.daily_reset_hour_utc)
        self.journal = Journal(db, self.quotas.state)
        self.events = EventHub()
        self.queue = FairQueue()
        self._jobs: dict[int, _Job] = {}
        self._by_key: dict[str, int] = {}
        self._key_ages: deque[tuple[float, str]] = deque()
        self._admitting: dict[str, asyncio.Future[Admission | None]] = {}
        self._active_by_member: Counter[Who] = Counter()
        self._next_id = 1
        self._last_number: dict[int, int] = {}
        self._running: list[_Job] = []
        self._batch_started = 0.0
        self._batch_cost = 0
        self._seconds_per_cost = scheduler.assumed_seconds_per_step / COST_PER_IMAGE_STEP
        self._completions: deque[tuple[float, int, int, float]] = deque()  # (at, guild, images, engine seconds)
        self._busy_seconds = 0.0
        self._generating_since: float | None = None
        self._backlog_seconds = 0.0
        self._accounted_at = 0.0
        self._last_prune = 0.0
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._open = False

    # lifecycle

    def subscribe(self) -> Subscription:
        """A stream of :class:`JobEvent` for every job (see :class:`EventKind` for what each kind carries)."""
        return self.events.subscribe()

    async def start(self) -> None:
        """Load the rules and quota state, recover queued and interrupted jobs, and start dispatching."""
        now = self.clock.now()
        recovered = await self.journal.recover(since=now - self.settings.idempotency_window_hours * HOUR)
        self._next_id = recovered.max_job_id + 1
        self._last_number = dict(recovered.max_numbers)
        self._restore_policy(recovered)
        for who, state in recovered.quotas.items():
            self.quotas.load(who, state)
        for key, job_id, created_at in recovered.recent_keys:
            self._remember_key(key, job_id, created_at)
        self.journal.start()
        await self._recover_jobs(recovered.active, now)
        self._accounted_at = self._last_prune = now
        self._open = True
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="scheduler-dispatcher")
        self._wake.set()

    def _restore_policy(self, recovered: Recovered) -> None:
        """Re-apply the admins' stored changes; one that no longer fits this config is logged and skipped."""
        for guild_id, tier, name, value in recovered.tier_limits:
            try:
                self.policy.tier_limits(guild_id, tier)
                self.policy.set_tier_change(guild_id, tier, name, check_limit(name, value))
            except DreamError as exc:
                log.error("ignoring the stored change of tier %s in server %s: %s", tier, guild_id, exc)
        for guild_id, member_id, name, value in recovered.overrides:
            try:
                self.policy.set_override((guild_id, member_id), name, check_limit(name, value))
            except DreamError as exc:
                log.error("ignoring the stored override of member %s in server %s: %s", member_id, guild_id, exc)
        self.policy.bans = {(ban.guild_id, ban.member_id): ban for ban in recovered.bans}
        for guild_id, weight in recovered.server_weights.items():
            try:
                self.policy.server_weights[guild_id] = check_server_weight(weight)
            except DreamError as exc:
                log.error("ignoring the stored weight of server %s: %s", guild_id, exc)
        self.policy.paused = recovered.switches.get("paused") == "1"
        if "multiplier" in recovered.switches:
            try:
                self.policy.multiplier = check_multiplier(float(recovered.switches["multiplier"]))
            except (ValueError, DreamError) as exc:
                log.error("ignoring the stored multiplier: %s", exc)

    async def close(self, grace_s: float | None = None) -> None:
        """Stop admitting, let the running batch finish (up to ``grace_s``, default ``shutdown_grace_s``), and stop.

        A batch still running after the grace period stays ``running`` in the
        journal, so the next start reports it interrupted and re-queues it.
        """
        self._open = False
        if self._dispatcher is not None:
            self._wake.set()
            grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
            timer = asyncio.ensure_future(self.clock.sleep(grace))  # on the service's clock, like the engine's work
            await asyncio.wait({self._dispatcher, timer}, return_when=asyncio.FIRST_COMPLETED)
            timer.cancel()
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, timer, return_exceptions=True)
            self._dispatcher = None
        await self.journal.close()
        for job in self._jobs.values():
            if not job.ended.done():
                job.ended.set_exception(ServiceStopped())  # a cancel still waiting hears that the bot stopped
                job.ended.exception()  # ...and nobody else needs to: no "never retrieved" warning

    # admission

    async def submit(self, request: DreamRequest) -> Admission:
        """Admit a job, or raise a :class:`~bot.scheduler.errors.DreamError` saying why not.

        The same ``idempotency_key`` always answers with the first job (``duplicate=True``).
        Raises ``InvalidRequest``, ``Banned``, ``Paused``, ``OverTierLimit``,
        ``MemberQueueFull``, ``QueueFull``, ``QuotaExceeded`` or ``ServiceStopped``.
        """
        key = request.idempotency_key
        if key in self._admitting:
            admission = await asyncio.shield(self._admitting[key])
        elif key in self._by_key:
            return Admission(*await self._known(request.guild_id, self._by_key[key]), duplicate=True)
        elif not self._open:
            raise ServiceStopped()
        else:
            job = self._admit_or_refuse(request)
            admitted = self._admitting[key] = asyncio.get_running_loop().create_future()
            durable = self.journal.admit(self._new_job_row(job))
            # A callback, not code after an await: it runs even if the caller is cancelled while waiting,
            # and a durable job must reach the queue.
            durable.add_done_callback(lambda outcome: self._on_durable(job, outcome, admitted))
            admission = await asyncio.shield(admitted)
            if admission is not None:
                return admission
        if admission is not None:  # a concurrent submit of the same key got in first
            return Admission(*await self._known(request.guild_id, admission.job.job_id), duplicate=True)
        # The key belongs to an older job that only the journal remembered.
        row = await self.journal.job_by_key(request.guild_id, key)
        if row is None:
            raise ServiceStopped()
        self._remember_key(key, row["id"], row["created_at"])
        return Admission(*await self._known(request.guild_id, row["id"]), duplicate=True)

    def _admit_or_refuse(self, request: DreamRequest) -> _Job:
        """Every check and the quota charge, with no await in between: concurrent submits cannot overtake."""
        now = self.clock.now()
        member = request.member
        who = (request.guild_id, member.id)
        job_request = JobRequest(
            job_id=str(self._next_id), prompt=request.prompt, seeds=tuple(request.seeds), params=request.params,
            negative_prompt=request.negative_prompt,
        )
        try:
            job_request.validate(self.engine.limits)
        except RequestError as exc:
            raise InvalidRequest(exc.field, exc.message) from None
        ban = self.policy.ban_of(who, now)
        if ban is not None:
            raise Banned(ban.until, ban.reason, now)
        if self.policy.paused and not self.settings.accept_while_paused:
            raise Paused()
        tier = self.policy.tier_of(member)
        limits = self.policy.limits(who, tier)
        self._check_shape(job_request, limits)
        if self._active_by_member[who] >= limits.max_queued:
            raise MemberQueueFull(limits.max_queued)
        if len(self._jobs) >= self.settings.max_queued_jobs:
            raise QueueFull(self._minutes_until_room())
        job_id = self._next_id
        self.quotas.charge(who, job_id, job_request.count, limits, now)
        self._next_id += 1
        # Numbers are handed out here, like ids, so concurrent admissions never share one; a failed commit
        # leaves a gap, which members never see reused.
        number = self._last_number[request.guild_id] = self._last_number.get(request.guild_id, 0) + 1
        view = JobView(
            job_id=job_id, number=number, member_id=member.id, guild_id=request.guild_id, channel_id=request.channel_id,
            state=JobState.QUEUED, prompt=request.prompt, negative_prompt=request.negative_prompt,
            params=request.params, seeds=job_request.seeds, cost=job_request.cost, created_at=now,
        )
        job = _Job(
            view=view, key=request.idempotency_key, tier=tier, request=job_request,
            entry=QueuedJob(job_id, request.guild_id, member.id, job_request.cost, job_request.count, request.params),
        )
        self._jobs[job_id] = job
        self._active_by_member[who] += 1
        self._by_key[request.idempotency_key] = job_id
        return job

    @staticmethod
    def _check_shape(request: JobRequest, limits: EffectiveLimits) -> None:
        images_allowed = min(limits.max_images, limits.burst)
        checks = (
            ("images per request", images_allowed, request.count),
            ("steps", limits.max_steps, request.params.steps),
            ("pixels per image", limits.max_pixels, request.params.width * request.params.height),
        )
        for name, allowed, asked in checks:
            if asked > allowed:
                raise OverTierLimit(name, allowed, asked, limits.tier)

    @staticmethod
    def _new_job_row(job: _Job) -> NewJob:
        view = job.view
        return NewJob(
            job_id=view.job_id, number=view.number, idempotency_key=job.key, member_id=view.member_id, guild_id=view.guild_id,
            channel_id=view.channel_id, prompt=view.prompt, negative_prompt=view.negative_prompt, params=view.params,
            seeds=view.seeds, cost=view.cost, tier=job.tier, created_at=view.created_at,
        )

    def _on_durable(
        self, job: _Job, outcome: asyncio.Future[bool], admitted: asyncio.Future[Admission | None]
    ) -> None:
        del self._admitting[job.key]
        failure = ServiceStopped() if outcome.cancelled() else outcome.exception()
        if failure is not None or not outcome.result():
            # Not ours to queue: the commit failed, or the key belongs to an older job in the table.
            self._forget(job, refund=True)
            del self._by_key[job.key]
            if failure is not None:
                admitted.set_exception(failure)
            else:
                admitted.set_result(None)
            return
        self._key_ages.append((job.view.created_at, job.key))
        self._account()
        self._push(job)
        self._wake.set()
        placement = self._placement(job)
        job.announced_position = placement.position
        admitted.set_result(Admission(job.view, placement))
        self._publish(job, EventKind.QUEUED, position=placement.position, eta_seconds=placement.eta_seconds)

    def _remember_key(self, key: str, job_id: int, created_at: float) -> None:
        self._by_key[key] = job_id
        self._key_ages.append((created_at, key))

    def _prune_keys(self, now: float) -> None:
        horizon = now - self.settings.idempotency_window_hours * HOUR
        while self._key_ages and self._key_ages[0][0] < horizon:
            _, key = self._key_ages.popleft()
            job_id = self._by_key.get(key)
            if job_id is not None and job_id not in self._jobs:
                del self._by_key[key]

    async def _known(self, guild_id: int, job_id: int) -> tuple[JobView, Placement]:
        job = self._active(guild_id, job_id)
        if job is not None:
            return job.view, self._placement(job)
        view = await self.job(guild_id, job_id)
        return view, Placement(job_id, view.state, None, None, len(self.queue))

    def _active(self, guild_id: int, job_id: int) -> _Job | None:
        """The server's queued or running job with this id; None if it is not active or another server's."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.guild_id == guild_id else None

    # queries

    async def job(self, guild_id: int, job_id: int) -> JobView:
        """The server's job with this internal id as it is now; another server's job is "no such job"."""
        job = self._active(guild_id, job_id)
        if job is not None:
            return job.view
        row = await self.journal.job(guild_id, job_id)
        if row is None:
            raise JobNotFound(job_id)
        return read_view(row)

    async def job_by_number(self, guild_id: int, number: int) -> JobView:
        """The server's job #number (the number members see)."""
        row = await self.journal.job_by_number(guild_id, number)
        if row is None:
            raise JobNotFound(number)
        job = self._active(guild_id, row["id"])
        return job.view if job is not None else read_view(row)

    def active_jobs(self, guild_id: int, member_id: int | None = None) -> list[JobView]:
        """The server's jobs queued or running (of one member, or everyone's), oldest first."""
        return [job.view for job in sorted(self._jobs.values(), key=lambda job: job.id)
                if job.guild_id == guild_id and (member_id is None or job.member_id == member_id)]

    async def placement(self, guild_id: int, job_id: int) -> Placement:
        """Queue position and ETA of a job (position and ETA are None once it has finished)."""
        job = self._active(guild_id, job_id)
        if job is not None:
            return self._placement(job)
        view = await self.job(guild_id, job_id)
        return Placement(job_id, view.state, None, None, len(self.queue))

    def pending(self) -> int:
        """Jobs admitted and not ended, in every server together (the operator's view)."""
        return len(self._jobs)

    def queue_summary(self, guild_id: int) -> QueueSummary:
        """The server's queue at a glance (jobs, images, members waiting, running jobs), the time until the whole
        queue is done, whether it is paused, and the whole queue's length."""
        jobs, images, _, members = self.queue.server_load(guild_id)
        return QueueSummary(
            queued_jobs=jobs,
            queued_images=images,
            members_waiting=members,
            running_jobs=tuple(job.id for job in self._running if job.guild_id == guild_id),
            drain_seconds=self._running_left() + self.queue.total_cost * self._seconds_per_cost,
            paused=self.policy.paused,
            all_queued_jobs=len(self.queue),
        )

    def quota_status(self, guild_id: int, member: Member) -> QuotaStatus:
        """What the member has left in the server: burst, daily budget, next reset, tier and limits."""
        now = self.clock.now()
        who = (guild_id, member.id)
        tier = self.policy.tier_of(member)
        limits = self.policy.limits(who, tier)
        allowance = self.quotas.allowance(who, limits, now)
        ban = self.policy.ban_of(who, now)
        return QuotaStatus(
            tier=tier, limits=limits, burst_left=allowance.burst_left, next_image_at=allowance.next_image_at,
            burst_full_at=allowance.burst_full_at, daily_left=allowance.daily_left,
            daily_resets_at=allowance.daily_resets_at, queued_jobs=self._active_by_member[who],
            banned=ban is not None, banned_until=None if ban is None else ban.until,
        )

    def stats(self, guild_id: int) -> SchedulerStats:
        """Figures for a server's admins: its queue and last hour; the shared GPU's duty cycle and speed."""
        now = self.clock.now()
        self._account()
        self._trim_completions(now)
        ours = [(images, seconds) for _, guild, images, seconds in self._completions if guild == guild_id]
        busy = self._busy_seconds + (now - self._generating_since if self._generating_since is not None else 0.0)
        jobs, images, _, members = self.queue.server_load(guild_id)
        return SchedulerStats(
            queued_jobs=jobs,
            queued_images=images,
            running_jobs=sum(1 for job in self._running if job.guild_id == guild_id),
            members_waiting=members,
            jobs_last_hour=len(ours),
            images_last_hour=sum(images for images, _ in ours),
            all_queued_jobs=len(self.queue),
            server_weight=self.policy.server_weight(guild_id),
            duty_cycle=busy / self._backlog_seconds if self._backlog_seconds else 1.0,
            busy_seconds=busy,
            backlog_seconds=self._backlog_seconds,
            average_generation_seconds=sum(s for _, s in ours) / len(ours) if ours else None,
            seconds_per_image_step=self._seconds_per_cost * COST_PER_IMAGE_STEP,
            paused=self.policy.paused,
            multiplier=self.policy.multiplier,
            engine=asdict(self.engine.health()),
        )

    async def member_jobs(self, guild_id: int, member_id: int, limit: int = 10) -> list[JobView]:
        """A member's newest jobs in the server first, in any state (as the journal has them)."""
        return [read_view(row) for row in await self.journal.member_jobs(guild_id, member_id, limit)]

    async def undelivered(self) -> list[FinishedJob]:
        """Done jobs whose result was neither posted nor found undeliverable (after a restart: post these)."""
        finished = []
        for row in await self.journal.undelivered():
            view = read_view(row)
            finished.append(FinishedJob(view, await self.journal.images(view.guild_id, view.job_id)))
        return finished

    async def images(self, guild_id: int, job_id: int) -> tuple[GeneratedImage, ...]:
        """The stored images of the server's done job (empty once pruned after delivery, or another server's)."""
        return await self.journal.images(guild_id, job_id)

    async def record_delivery(self, guild_id: int, job_id: int, message_id: int) -> bool:
        """Record the message that posted a done job's images. True the first time; False if already recorded."""
        delivered = await self.journal.record_delivery(guild_id, job_id, message_id, self.clock.now())
        if not delivered:
            view = await self.job(guild_id, job_id)
            if view.state is not JobState.DONE:
                raise ValueError(f"job {job_id} is {view.state}, not done: there is nothing to deliver")
        return delivered

    async def record_undeliverable(self, guild_id: int, job_id: int, reason: str) -> bool:
        """Record why a done job's result cannot be posted, so it is not tried again after a restart.

        True the first time; False if it was delivered or recorded undeliverable already.
        """
        return await self.journal.record_undeliverable(guild_id, job_id, reason)

    # cancel

    async def cancel(self, guild_id: int, job_id: int, actor_id: int, *, moderator: bool = False) -> JobView:
        """Cancel a queued or running job of the server (refunded); return the job's final view.

        Members may cancel their own jobs, the server's moderators anyone's in
        the server (audited, with the state before and after); another server's
        job is "no such job". A job that had already finished is returned as it is.
        """
        job = self._active(guild_id, job_id)
        if job is not None and job.key in self._admitting:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._admitting[job.key])
            job = self._active(guild_id, job_id)
        if job is None:
            view = await self.job(guild_id, job_id)
            if view.member_id != actor_id and not moderator:
                raise NotYourJob(job_id)
            return view
        if job.member_id != actor_id and not moderator:
            raise NotYourJob(job_id)
        by_moderator = job.member_id != actor_id
        before = job.view.state
        reason = "cancelled by a moderator" if by_moderator else "cancelled"
        if job.id in self.queue:
            self._account()
            self.queue.remove(job_id)
            await self._end([(job, JobState.CANCELLED, reason, None)])
        elif job in self._running:
            job.cancel_reason = reason
            await self.engine.cancel(str(job_id))
        view = await asyncio.shield(job.ended)
        if by_moderator:
            await self.journal.record_audit(self._audit(
                guild_id, actor_id, "cancel", f"job #{job.view.number} of member {job.member_id}", {"state": before},
                {"state": view.state, "error": view.error},
            ))
        return view

    # admin

    async def set_tier_limit(self, actor_id: int, guild_id: int, tier: str, limit: str,
                             value: float | None) -> dict[str, float]:  # fmt: skip
        """Change one limit of a tier live in a server (None reverts to the config value); returns the tier's
        limits there."""
        checked = check_limit(limit, value)
        before = self.policy.tier_limits(guild_id, tier)[limit]
        after = getattr(self.policy.settings.tiers[tier], limit) if checked is None else checked
        await self.journal.set_tier_limit(
            guild_id, tier, limit, checked,
            self._audit(guild_id, actor_id, "set_tier_limit", f"tier {tier}: {limit}", before, after),
        )
        self.policy.set_tier_change(guild_id, tier, limit, checked)
        return self.policy.tier_limits(guild_id, tier)

    async def set_member_override(self, actor_id: int, guild_id: int, member_id: int, limit: str,
                                  value: float | None) -> dict[str, float]:  # fmt: skip
        """Override one limit for one member in a server (absolute; None removes it); returns their overrides."""
        checked = check_limit(limit, value)
        who = (guild_id, member_id)
        before = self.policy.overrides.get(who, {}).get(limit)
        await self.journal.set_override(
            guild_id, member_id, limit, checked,
            self._audit(guild_id, actor_id, "set_override", f"member {member_id}: {limit}", before, checked),
        )
        self.policy.set_override(who, limit, checked)
        return dict(self.policy.overrides.get(who, {}))

    async def ban(self, actor_id: int, guild_id: int, member_id: int, *, until: float | None = None,
                  reason: str = "") -> Ban:  # fmt: skip
        """Bar a member from generating in a server (``until`` unix seconds, None for no expiry); cancels their
        queued jobs there."""
        now = self.clock.now()
        if until is not None and (not math.isfinite(until) or until <= now):
            raise InvalidLimit("until", "must be a time in the future")
        who = (guild_id, member_id)
        ban = Ban(guild_id=guild_id, member_id=member_id, until=until, reason=reason, banned_by=actor_id,
                  banned_at=now)
        previous = self.policy.bans.get(who)
        await self.journal.set_ban(
            ban, self._audit(guild_id, actor_id, "ban", f"member {member_id}", _ban_record(previous), _ban_record(ban))
        )
        self.policy.bans[who] = ban
        queued = [job for job in self._jobs.values() if job.who == who and job.id in self.queue]
        self._account()
        for job in queued:
            self.queue.remove(job.id)
        if queued:
            await self._end([(job, JobState.CANCELLED, "cancelled: you were banned", None) for job in queued])
        return ban

    async def unban(self, actor_id: int, guild_id: int, member_id: int) -> bool:
        """Lift a member's ban in a server; False if they were not banned there."""
        who = (guild_id, member_id)
        previous = self.policy.bans.get(who)
        if previous is None:
            return False
        await self.journal.lift_ban(
            guild_id, member_id,
            self._audit(guild_id, actor_id, "unban", f"member {member_id}", _ban_record(previous), None),
        )
        del self.policy.bans[who]
        return True

    async def set_multiplier(self, actor_id: int, value: float) -> float:
        """The operator's tap: scale every tier's burst, rate and daily budget in every server (0.01 to 100)."""
        value = check_multiplier(value)
        before = self.policy.multiplier
        await self.journal.set_switch(
            "multiplier", repr(value), self._audit(OPERATOR, actor_id, "set_multiplier", "multiplier", before, value)
        )
        self.policy.multiplier = value
        return value

    async def set_server_weight(self, actor_id: int, guild_id: int, weight: float) -> float:
        """The operator's share of the GPU for a server against the others' (0.01 to 100; 1 by default).

        Applies to the server's jobs from their next dispatch on.
        """
        weight = check_server_weight(weight)
        before = self.policy.server_weight(guild_id)
        await self.journal.set_server_weight(
            guild_id, weight,
            self._audit(OPERATOR, actor_id, "set_server_weight", f"server {guild_id}", before, weight),
        )
        self.policy.server_weights[guild_id] = weight
        return weight

    def server_weight(self, guild_id: int) -> float:
        """A server's share of the GPU (1 unless the operator changed it)."""
        return self.policy.server_weight(guild_id)

    async def pause(self, actor_id: int) -> None:
        """The operator's switch: run nothing new in any server (the running batch finishes); submissions are
        accepted or refused by config."""
        await self._set_paused(actor_id, True)

    async def resume(self, actor_id: int) -> None:
        """The operator's switch: run jobs again."""
        await self._set_paused(actor_id, False)

    async def audit_log(self, guild_id: int, limit: int = 50) -> list[AuditEntry]:
        """The server's newest admin changes first (guild 0: the operator's changes to what servers share)."""
        return await self.journal.audit(guild_id, limit)

    def tier_limits(self, guild_id: int, tier: str) -> dict[str, float]:
        """A tier's limits in a server now (config plus its live changes, before the multiplier)."""
        return self.policy.tier_limits(guild_id, tier)

    async def _set_paused(self, actor_id: int, paused: bool) -> None:
        before = self.policy.paused
        await self.journal.set_switch(
            "paused", "1" if paused else "0",
            self._audit(OPERATOR, actor_id, "pause" if paused else "resume", "queue", before, paused),
        )
        self._account()
        self.policy.paused = paused
        self._wake.set()

    def _audit(self, guild_id: int, actor_id: int, action: str, target: str, before: object,
               after: object) -> AuditEntry:  # fmt: skip
        return AuditEntry(guild_id, self.clock.now(), actor_id, action, target, before, after)

    # dispatch

    async def _dispatch_loop(self) -> None:
        while self._open:
            batch = self._next_batch()
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._run_batch(batch)
            except Exception:
                log.exception("batch %s failed unexpectedly", [job.id for job in batch])
                stranded = [job for job in batch if job.id in self._jobs and job.id not in self.queue]
                await self._end([(job, JobState.FAILED, "an internal error stopped this job", None)
                                 for job in stranded])
            finally:
                self._account()
                self._running = []
            await self._housekeeping()

    def _next_batch(self) -> list[_Job]:
        if self.policy.paused:
            return []
        self._account()
        batch = [self._jobs[entry.job_id] for entry in self.queue.pick(self.max_batch_images)]
        for job in batch:
            job.view = replace(job.view, state=JobState.RUNNING)
        self._running = batch
        return batch

    async def _run_batch(self, batch: list[_Job]) -> None:
        now = self.clock.now()
        refused = await self.journal.mark_running([(job.guild_id, job.id) for job in batch], now)
        if refused:
            log.error("journal rows of jobs %s are missing or not queued; failing them", sorted(refused))
            await self._end([(job, JobState.FAILED, "this job's record was lost; please try again", None)
                             for job in batch if job.id in refused])
        runnable = []
        for job in batch:
            if job.id in refused:
                continue
            job.view = replace(job.view, started_at=now, attempts=job.view.attempts + 1)
            if job.cancel_reason:
                await self._end([(job, JobState.CANCELLED, job.cancel_reason, None)])
            else:
                runnable.append(job)
        if not runnable:
            return
        self._running = runnable
        self._batch_started = now
        self._batch_cost = sum(job.view.cost for job in runnable)
        for job in runnable:
            self._publish(job, EventKind.STARTED, attempt=job.view.attempts)
        self._announce_positions()
        self._generating_since = now
        try:
            results = await self.engine.generate([job.request for job in runnable], self._on_progress)
        except Exception as exc:
            log.exception("engine.generate raised")
            results = [JobResult(str(job.id), Outcome.FAILED, error=f"the engine failed: {exc}", retryable=True)
                       for job in runnable]
        finally:
            self._generating_since = None
        finished = self.clock.now()
        self._busy_seconds += finished - now
        if all(result.outcome is Outcome.DONE for result in results):  # a crash or cancel says nothing of speed
            self._measure(finished - now, self._batch_cost)
        await self._end([self._outcome(job, result) for job, result in _match(runnable, results)])

    def _outcome(self, job: _Job, result: JobResult | None) -> tuple[_Job, JobState, str | None, JobResult | None]:
        if result is None:
            return job, self._retry_or_fail(job), "the engine returned no result", None
        if job.cancel_reason or result.outcome is Outcome.CANCELLED:
            return job, JobState.CANCELLED, job.cancel_reason or "cancelled", result
        if result.outcome is Outcome.DONE:
            return job, JobState.DONE, None, result
        if result.retryable:
            return job, self._retry_or_fail(job), result.error, result
        return job, JobState.FAILED, result.error or "generation failed", result

    def _retry_or_fail(self, job: _Job) -> JobState:
        return JobState.QUEUED if job.view.attempts <= self.settings.requeue_on_failure else JobState.FAILED

    def _on_progress(self, progress: Progress) -> None:
        job = self._jobs.get(int(progress.job_id))
        if job is not None:
            self._publish(job, EventKind.PROGRESS, step=progress.step, steps=progress.steps)

    async def _end(self, outcomes: Iterable[tuple[_Job, JobState, str | None, JobResult | None]]) -> None:
        """Journal how jobs ended (refunding quota where due), then update memory and announce it."""
        outcomes = list(outcomes)
        now = self.clock.now()
        for job, state, _, _ in outcomes:
            if state in (JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED):
                self.quotas.refund(job.who, job.id, now)
            elif state is JobState.DONE:
                self.quotas.settle(job.who, job.id)
        ends = [
            JobEnd(job.guild_id, job.id, state, now, error=error if state is not JobState.DONE else None,
                   seconds=result.seconds if result else None,
                   images=result.images if result and state is JobState.DONE else ())
            for job, state, error, result in outcomes
        ]
        missing = await self._journal_retrying(ends, [job.who for job, _, _, _ in outcomes])
        requeued = [(job, error) for job, state, error, _ in outcomes if state is JobState.QUEUED]
        for job, error in reversed(requeued):  # reversed: the first of a member's jobs ends up at the head
            job.view = replace(job.view, state=JobState.QUEUED, error=error)
            self._push(job, front=True)
            self._publish(job, EventKind.REQUEUED, error=error)
        if requeued:
            self._wake.set()
        for job, state, error, result in outcomes:
            if state is JobState.QUEUED:
                continue
            if job.id in missing and state is not JobState.FAILED:
                log.error("journal row of job %s vanished; it ends as failed", job.id)
                state, error = JobState.FAILED, "this job's record was lost; please try again"
            job.view = replace(job.view, state=state, error=error, finished_at=now)
            self._forget(job, refund=False)
            if state is JobState.DONE:
                self._completions.append((now, job.guild_id, job.request.count, result.seconds if result else 0.0))
                self._publish(job, EventKind.DONE, images=result.images)
            else:
                kind = {JobState.CANCELLED: EventKind.CANCELLED, JobState.INTERRUPTED: EventKind.INTERRUPTED}
                self._publish(job, kind.get(state, EventKind.FAILED), error=error)
            job.ended.set_result(job.view)

    async def _journal_retrying(self, ends: list[JobEnd], members: list[Who]) -> set[int]:
        """Write job ends, retrying while the database refuses: an outcome must not be lost."""
        while True:
            try:
                return await self.journal.end(ends, members)
            except Exception:
                log.exception("could not journal the end of jobs %s; retrying", [end.job_id for end in ends])
                await self.clock.sleep(1.0)

    def _forget(self, job: _Job, *, refund: bool) -> None:
        """Drop a job from memory (and refund its charge if asked: it never made it into the journal)."""
        if refund:
            self.quotas.refund(job.who, job.id, self.clock.now())
        self._jobs.pop(job.id, None)
        self._active_by_member[job.who] -= 1
        if not self._active_by_member[job.who]:
            del self._active_by_member[job.who]

    def _push(self, job: _Job, *, front: bool = False) -> None:
        """Queue a job under its member's tier weight and its server's weight."""
        weight = self.policy.limits(job.who, job.tier).weight
        self.queue.push(job.entry, weight, self.policy.server_weight(job.guild_id), front=front)

    # restart

    async def _recover_jobs(self, rows: list[aiosqlite.Row], now: float) -> None:
        """Re-queue jobs that were queued, report running ones interrupted, fail rows that cannot be read."""
        resumed: list[_Job] = []
        given_up: list[tuple[_Job, JobState, str | None, None]] = []
        for row in rows:
            tier = row["tier"] or self.policy.settings.default_tier
            try:
                view = job_view(row)
                request = JobRequest(str(view.job_id), view.prompt, view.seeds, view.params, view.negative_prompt)
                request.validate(self.engine.limits)
            except (ValueError, TypeError, KeyError) as exc:
                log.error("job %s cannot be read back from the journal (%s); failing it", row["id"], exc)
                view = salvage_view(row)
                job = self._restore(view, tier, JobRequest(str(view.job_id), view.prompt, (), view.params))
                given_up.append((job, JobState.FAILED, "this job could not be resumed after a restart", None))
                continue
            job = self._restore(view, tier, request)
            if view.state is JobState.QUEUED:
                resumed.append(job)
            elif view.attempts <= self.settings.requeue_on_failure:
                job.view = replace(view, state=JobState.QUEUED, error=INTERRUPTED)
                resumed.append(job)
            else:
                given_up.append((job, JobState.INTERRUPTED, INTERRUPTED, None))
        interrupted = [job for job in resumed if job.view.error == INTERRUPTED]
        if interrupted:
            await self._journal_retrying(
                [JobEnd(job.guild_id, job.id, JobState.QUEUED, now, error=INTERRUPTED) for job in interrupted], []
            )
        self.quotas.reconcile(set(self._jobs))
        for job in resumed:  # rows came in id order: the original order
            self._push(job)
        for job in resumed:
            if job.view.error == INTERRUPTED:
                self._publish(job, EventKind.INTERRUPTED, requeued=True, error=INTERRUPTED)
            else:
                placement = self._placement(job)
                job.announced_position = placement.position
                self._publish(job, EventKind.QUEUED, recovered=True, position=placement.position,
                              eta_seconds=placement.eta_seconds)
        if given_up:
            await self._end(given_up)

    def _restore(self, view: JobView, tier: str, request: JobRequest) -> _Job:
        job = _Job(view=view, key=None, tier=tier, request=request,
                   entry=QueuedJob(view.job_id, view.guild_id, view.member_id, request.cost, request.count,
                                   view.params))
        self._jobs[view.job_id] = job
        self._active_by_member[job.who] += 1
        return job

    # estimates and accounting

    def _placement(self, job: _Job) -> Placement:
        if job.view.state is JobState.RUNNING:
            return Placement(job.id, JobState.RUNNING, 0, self._running_left(), len(self.queue))
        if job.id not in self.queue:
            return Placement(job.id, job.view.state, None, None, len(self.queue))
        ahead = self.queue.position(job.id)
        mean_cost = self.queue.total_cost / len(self.queue)
        eta = self._running_left() + (ahead * mean_cost + job.view.cost) * self._seconds_per_cost
        return Placement(job.id, JobState.QUEUED, ahead + 1, eta, len(self.queue))

    def _running_left(self) -> float:
        if not self._running:
            return 0.0
        expected = self._batch_cost * self._seconds_per_cost
        return max(0.0, self._batch_started + expected - self.clock.now())

    def _minutes_until_room(self) -> int:
        """Minutes until a tenth of the queue has been worked off (when asking again is likely to succeed)."""
        seconds = self._running_left() + 0.1 * self.queue.total_cost * self._seconds_per_cost
        return max(1, math.ceil(seconds / 60))

    def _measure(self, seconds: float, cost: int) -> None:
        if cost > 0 and seconds > 0:
            alpha = self.settings.throughput_smoothing
            self._seconds_per_cost += alpha * (seconds / cost - self._seconds_per_cost)

    def _announce_positions(self) -> None:
        for position, entry in enumerate(self.queue.ordered(), start=1):
            job = self._jobs[entry.job_id]
            if job.announced_position != position:
                job.announced_position = position
                placement = self._placement(job)
                self._publish(job, EventKind.POSITION, position=position, eta_seconds=placement.eta_seconds)

    def _account(self) -> None:
        """Add the time since the last call to the backlog total if work was waiting (and not paused)."""
        now = self.clock.now()
        if (self._running or len(self.queue)) and not self.policy.paused:
            self._backlog_seconds += now - self._accounted_at
        self._accounted_at = now

    def _trim_completions(self, now: float) -> None:
        while self._completions and self._completions[0][0] < now - HOUR:
            self._completions.popleft()

    async def _housekeeping(self) -> None:
        now = self.clock.now()
        self._trim_completions(now)
        self._prune_keys(now)
        if now - self._last_prune >= HOUR:
            self._last_prune = now
            await self.journal.prune_images(now - self.settings.image_retention_hours * HOUR)

    def _publish(self, job: _Job, kind: EventKind, **fields: object) -> None:
        view = job.view
        self.events.publish(JobEvent(kind, view.job_id, view.number, view.member_id, view.guild_id, view.channel_id,
                                     self.clock.now(), **fields))


def _match(jobs: list[_Job], results: list[JobResult]) -> list[tuple[_Job, JobResult | None]]:
    by_id = {result.job_id: result for result in results}
    return [(job, by_id.get(str(job.id))) for job in jobs]


def _ban_record(ban: Ban | None) -> dict[str, object] | None:
    return None if ban is None else {"until": ban.until, "reason": ban.reason, "by": ban.banned_by}
