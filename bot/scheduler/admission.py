"""Admission: idempotency, every check, the quota charge, the group-committed journal write, then the queue.

:meth:`Admitter.submit` checks the request, ban, pause, tier limits, queue caps
(the member's, the server's, then everyone's) and quota (charging it) with no
await in between, so concurrent submits cannot overtake each other; it then
waits for the job row to be group-committed, and only then is the job in the
fair queue and the member told their position.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from bot.scheduler.core import HOUR, Core, Job
from bot.scheduler.errors import (
    Banned,
    InvalidRequest,
    MemberQueueFull,
    OverTierLimit,
    Paused,
    QueueFull,
    RelaxQueueFull,
    ServerQueueFull,
    ServiceStopped,
)
from bot.scheduler.estimates import Estimates
from bot.scheduler.events import EventKind
from bot.scheduler.fairqueue import QueuedJob
from bot.scheduler.models import Admission, DreamRequest, EffectiveLimits, JobState, JobView, Placement
from bot.scheduler.modes import RELAX
from engine.types import JobRequest, RequestError


class Admitter:
    """Turns requests into queued jobs; remembers recent idempotency keys and hands out ids and job numbers."""

    def __init__(self, core: Core, estimates: Estimates) -> None:
        self.core = core
        self.estimates = estimates
        self._by_key: dict[str, int] = {}
        self._key_ages: deque[tuple[float, str]] = deque()
        self._admitting: dict[str, asyncio.Future[Admission | None]] = {}
        self._next_id = 1
        self._last_number: dict[int, int] = {}

    def resume_numbering(self, max_job_id: int, max_numbers: dict[int, int]) -> None:
        """After a restart: go on from the journal's highest job id and each server's highest number."""
        self._next_id = max_job_id + 1
        self._last_number = dict(max_numbers)

    async def submit(self, request: DreamRequest) -> Admission:
        """Admit a job, or raise a :class:`~bot.scheduler.errors.DreamError` saying why not.

        The same ``idempotency_key`` always answers with the first job (``duplicate=True``).
        """
        key = request.idempotency_key
        if key in self._admitting:
            admission = await asyncio.shield(self._admitting[key])
        elif key in self._by_key:
            return Admission(*await self._known(request.guild_id, self._by_key[key]), duplicate=True)
        elif not self.core.open:
            raise ServiceStopped()
        else:
            job = self._admit_or_refuse(request)
            admitted = self._admitting[key] = asyncio.get_running_loop().create_future()
            durable = self.core.journal.admit(job.view, key, job.tier, job.request.init_image)
            # A callback, not code after an await: it runs even if the caller is cancelled while waiting,
            # and a durable job must reach the queue.
            durable.add_done_callback(lambda outcome: self._on_durable(job, outcome, admitted))
            admission = await asyncio.shield(admitted)
            if admission is not None:
                return admission
        if admission is not None:  # a concurrent submit of the same key got in first
            return Admission(*await self._known(request.guild_id, admission.job.job_id), duplicate=True)
        # The key belongs to an older job that only the journal remembered.
        row = await self.core.journal.job_by_key(request.guild_id, key)
        if row is None:
            raise ServiceStopped()
        self.remember_key(key, row["id"], row["created_at"])
        return Admission(*await self._known(request.guild_id, row["id"]), duplicate=True)

    async def settled(self, job: Job) -> None:
        """Wait until a job being admitted is in the queue or refused (a cancel must not overtake its commit)."""
        if job.key in self._admitting:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._admitting[job.key])

    def remember_key(self, key: str, job_id: int, created_at: float) -> None:
        self._by_key[key] = job_id
        self._key_ages.append((created_at, key))

    def prune_keys(self, now: float) -> None:
        """Forget the keys older than the idempotency window (the journal still knows them)."""
        horizon = now - self.core.settings.idempotency_window_hours * HOUR
        while self._key_ages and self._key_ages[0][0] < horizon:
            _, key = self._key_ages.popleft()
            job_id = self._by_key.get(key)
            if job_id is not None and job_id not in self.core.jobs:
                del self._by_key[key]

    def _admit_or_refuse(self, request: DreamRequest) -> Job:
        """Every check and the quota charge, with no await in between: concurrent submits cannot overtake."""
        core = self.core
        now = core.clock.now()
        member = request.member
        who = (request.guild_id, member.id)
        job_request = JobRequest(
            job_id=str(self._next_id), prompt=request.prompt, seeds=tuple(request.seeds), params=request.params,
            negative_prompt=request.negative_prompt, init_image=request.init_image,
        )
        try:
            job_request.validate(core.engine.limits)
        except RequestError as exc:
            raise InvalidRequest(exc.field, exc.message) from None
        ban = core.policy.ban_of(who, now)
        if ban is not None:
            raise Banned(ban.until, ban.reason, now)
        if core.policy.paused and not core.settings.accept_while_paused:
            raise Paused()
        tier = core.policy.tier_of(request.guild_id, member)
        limits = core.policy.limits(who, tier)
        _check_shape(job_request, limits, upscale=request.upscale)
        if core.active_by_member[who] >= limits.max_queued:
            raise MemberQueueFull(limits.max_queued)
        relax = request.mode == RELAX
        if relax and core.relax_jobs(who) >= core.relax_terms(request.guild_id).max_jobs:
            raise RelaxQueueFull(core.relax_terms(request.guild_id).max_jobs)
        # The server's own cap first: when both are reached, that is the one its members can wait out.
        if core.active_by_server[request.guild_id] >= core.settings.max_queued_jobs_per_server:
            raise ServerQueueFull(core.settings.max_queued_jobs_per_server, self.estimates.minutes_until_room())
        if len(core.jobs) >= core.settings.max_queued_jobs:
            raise QueueFull(core.settings.max_queued_jobs, self.estimates.minutes_until_room())
        job_id = self._next_id
        if not relax:  # relax is free: nothing charged, so nothing is refunded when it ends
            charge = job_request.count if request.charge is None else request.charge
            core.quotas.charge(who, job_id, charge, limits, now)
        self._next_id += 1
        # Numbers are handed out here, like ids, so concurrent admissions never share one; a failed commit
        # leaves a gap, which members never see reused.
        number = self._last_number[request.guild_id] = self._last_number.get(request.guild_id, 0) + 1
        view = JobView(
            job_id=job_id, number=number, member_id=member.id, guild_id=request.guild_id,
            channel_id=request.channel_id, state=JobState.QUEUED, prompt=request.prompt,
            negative_prompt=request.negative_prompt, params=request.params, seeds=job_request.seeds,
            cost=job_request.cost, created_at=now, mode=request.mode, style=request.style,
        )
        job = Job(
            view=view, key=request.idempotency_key, tier=tier, request=job_request,
            entry=QueuedJob(job_id, request.guild_id, member.id, job_request.cost, job_request.count, request.params),
        )
        core.track(job)
        self._by_key[request.idempotency_key] = job_id
        return job

    def _on_durable(self, job: Job, outcome: asyncio.Future[bool], admitted: asyncio.Future[Admission | None]) -> None:
        core = self.core
        assert job.key is not None
        del self._admitting[job.key]
        failure = ServiceStopped() if outcome.cancelled() else outcome.exception()
        if failure is not None or not outcome.result():
            # Not ours to queue: the commit failed, or the key belongs to an older job in the table.
            core.forget(job, refund=True)
            del self._by_key[job.key]
            if failure is not None:
                admitted.set_exception(failure)
            else:
                admitted.set_result(None)
            return
        self._key_ages.append((job.view.created_at, job.key))
        core.account()
        core.push(job)
        core.wake.set()
        placement = self.estimates.placement(job)
        job.announced_position = placement.position
        admitted.set_result(Admission(job.view, placement))
        core.publish(job, EventKind.QUEUED, position=placement.position, eta_seconds=placement.eta_seconds)

    async def _known(self, guild_id: int, job_id: int) -> tuple[JobView, Placement]:
        job = self.core.active(guild_id, job_id)
        if job is not None:
            return job.view, self.estimates.placement(job)
        view = await self.core.view(guild_id, job_id)
        return view, Placement(job_id, view.state, None, None, len(self.core.queue))


def _check_shape(request: JobRequest, limits: EffectiveLimits, *, upscale: bool = False) -> None:
    """Refuse a request bigger than the member's tier allows (images, steps, pixels per image; an ``upscale``
    doubles the sides of an image the tier allowed, so it may have 4x the pixels)."""
    images_allowed = min(limits.max_images, limits.burst)
    checks = (
        ("images per request", images_allowed, request.count),
        ("steps", limits.max_steps, request.params.steps),
        ("pixels per image", limits.max_pixels * (4 if upscale else 1), request.params.width * request.params.height),
    )
    for name, allowed, asked in checks:
        if asked > allowed:
            raise OverTierLimit(name, allowed, asked, limits.tier)
