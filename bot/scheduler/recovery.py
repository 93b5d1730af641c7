"""Recovery at start: the rules and quota state from the journal, then the jobs that were queued or running.

Queued jobs are re-queued in their original order; running ones are reported
interrupted and re-queued while they have attempts left; rows that cannot be
read back are failed. Stored admin changes that no longer fit the config are
logged and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import aiosqlite

from bot.scheduler.admission import Admitter
from bot.scheduler.config import check_limit, check_multiplier, check_server_weight
from bot.scheduler.core import HOUR, Core, Ending, Job
from bot.scheduler.errors import DreamError
from bot.scheduler.estimates import Estimates
from bot.scheduler.events import EventKind
from bot.scheduler.fairqueue import QueuedJob
from bot.scheduler.journal import Journal
from bot.scheduler.models import Ban, JobState, JobView
from bot.scheduler.quotas import QuotaState, Who
from bot.scheduler.rows import JOB_COLUMNS, job_view, quota_state, salvage_view
from engine.types import JobRequest

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted by a restart"


@dataclass(frozen=True)
class Recovered:
    """What a restart finds: rules, quota state, and the jobs that were queued or running."""

    max_job_id: int
    max_numbers: dict[int, int]
    """The highest job number of each server."""
    tier_limits: list[tuple[int, str, str, float]]
    overrides: list[tuple[int, int, str, float]]
    bans: list[Ban]
    switches: dict[str, str]
    server_weights: dict[int, float]
    quotas: dict[Who, QuotaState]
    active: list[aiosqlite.Row]
    recent_keys: list[tuple[str, int, float]]


_SERVERS = " UNION ".join(f"SELECT guild_id FROM {table}"
                          for table in ("jobs", "bans", "quota_state", "tier_limits", "member_overrides"))
"""Every server with rows in the scheduler's per-server tables."""


async def load(journal: Journal, since: float) -> Recovered:
    """Everything a start needs; ``since`` bounds the idempotency keys loaded into memory.

    A start is the operator's process acting for every server, so it reads
    them all, but server by server: one query lists the servers with rows,
    then each server's jobs, bans, quotas, tier changes and overrides are
    read by its id. Read whole, since they belong to no one server: the
    highest internal job id (ids count across servers; members see per-server
    numbers), the operator's switches and server weights, and the recent
    idempotency keys (Discord interaction ids, unique across servers).
    """
    max_id = (await journal.fetchall("SELECT coalesce(max(id), 0) FROM jobs"))[0][0]
    recovered = Recovered(
        max_job_id=max_id, max_numbers={}, tier_limits=[], overrides=[], bans=[],
        switches={row["key"]: row["value"] for row in await journal.fetchall("SELECT key, value FROM scheduler_state")},
        server_weights={row[0]: row[1] for row in await journal.fetchall(
            "SELECT guild_id, weight FROM server_weights")},
        quotas={}, active=[],
        recent_keys=[
            tuple(row) for row in await journal.fetchall(
                "SELECT idempotency_key, id, created_at FROM jobs"
                " WHERE created_at >= ? AND idempotency_key IS NOT NULL ORDER BY id",
                (since,),
            )
        ],
    )  # fmt: skip
    for (guild_id,) in await journal.fetchall(_SERVERS):
        await _load_server(journal, guild_id, recovered)
    recovered.active.sort(key=lambda row: row["id"])  # the original order, across servers
    return recovered


async def _load_server(journal: Journal, guild_id: int, into: Recovered) -> None:
    """Add one server's rows to what a start recovers."""
    [(number,)] = await journal.fetchall("SELECT max(number) FROM jobs WHERE guild_id = ?", (guild_id,))
    if number is not None:
        into.max_numbers[guild_id] = number
    into.bans.extend(
        Ban(guild_id=guild_id, member_id=row["member_id"], until=row["until"], reason=row["reason"],
            banned_by=row["banned_by"], banned_at=row["banned_at"])
        for row in await journal.fetchall("SELECT * FROM bans WHERE guild_id = ?", (guild_id,))
    )  # fmt: skip
    for row in await journal.fetchall("SELECT * FROM quota_state WHERE guild_id = ?", (guild_id,)):
        into.quotas[(guild_id, row["member_id"])] = quota_state(row)
    into.tier_limits.extend(tuple(row) for row in await journal.fetchall(
        "SELECT guild_id, tier, name, value FROM tier_limits WHERE guild_id = ?", (guild_id,)))
    into.overrides.extend(tuple(row) for row in await journal.fetchall(
        "SELECT guild_id, member_id, name, value FROM member_overrides WHERE guild_id = ?", (guild_id,)))
    into.active.extend(await journal.fetchall(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND state IN ('queued', 'running') ORDER BY id",
        (guild_id,),
    ))



async def recover(core: Core, admitter: Admitter, estimates: Estimates) -> None:
    """Load everything a start needs from the journal and put the unfinished jobs back in the queue."""
    now = core.clock.now()
    recovered = await load(core.journal, since=now - core.settings.idempotency_window_hours * HOUR)
    admitter.resume_numbering(recovered.max_job_id, recovered.max_numbers)
    _restore_policy(core, recovered)
    for who, state in recovered.quotas.items():
        core.quotas.load(who, state)
    for key, job_id, created_at in recovered.recent_keys:
        admitter.remember_key(key, job_id, created_at)
    core.journal.start()
    await _recover_jobs(core, estimates, recovered.active, now)
    core.figures.accounted_at = now


def _restore_policy(core: Core, recovered: Recovered) -> None:
    """Re-apply the admins' and the operator's stored changes; one that no longer fits is logged and skipped."""
    policy = core.policy
    for guild_id, tier, name, value in recovered.tier_limits:
        try:
            policy.tier_limits(guild_id, tier)
            policy.set_tier_change(guild_id, tier, name, check_limit(name, value))
        except DreamError as exc:
            log.error("ignoring the stored change of tier %s in server %s: %s", tier, guild_id, exc)
    for guild_id, member_id, name, value in recovered.overrides:
        try:
            policy.set_override((guild_id, member_id), name, check_limit(name, value))
        except DreamError as exc:
            log.error("ignoring the stored override of member %s in server %s: %s", member_id, guild_id, exc)
    policy.bans = {(ban.guild_id, ban.member_id): ban for ban in recovered.bans}
    for guild_id, weight in recovered.server_weights.items():
        try:
            policy.server_weights[guild_id] = check_server_weight(weight)
        except DreamError as exc:
            log.error("ignoring the stored weight of server %s: %s", guild_id, exc)
    policy.paused = recovered.switches.get("paused") == "1"
    if "multiplier" in recovered.switches:
        try:
            policy.multiplier = check_multiplier(float(recovered.switches["multiplier"]))
        except (ValueError, DreamError) as exc:
            log.error("ignoring the stored multiplier: %s", exc)


async def _recover_jobs(core: Core, estimates: Estimates, rows: list[aiosqlite.Row], now: float) -> None:
    """Re-queue jobs that were queued (with their start images), report running ones interrupted, fail rows that
    cannot be read."""
    resumed: list[Job] = []
    given_up: list[Ending] = []
    for row in rows:
        tier = row["tier"] or core.policy.settings.default_tier
        try:
            view = job_view(row)
            init_image = await core.journal.init_image(view.guild_id, view.job_id)
            request = JobRequest(str(view.job_id), view.prompt, view.seeds, view.params, view.negative_prompt,
                                 init_image)  # fmt: skip
            request.validate(core.engine.limits)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("job %s cannot be read back from the journal (%s); failing it", row["id"], exc)
            view = salvage_view(row)
            job = _restore(core, view, tier, JobRequest(str(view.job_id), view.prompt, (), view.params))
            given_up.append((job, JobState.FAILED, "this job could not be resumed after a restart", None))
            continue
        job = _restore(core, view, tier, request)
        if view.state is JobState.QUEUED:
            resumed.append(job)
        elif view.attempts <= core.settings.requeue_on_failure:
            job.view = replace(view, state=JobState.QUEUED, error=INTERRUPTED)
            resumed.append(job)
        else:
            given_up.append((job, JobState.INTERRUPTED, INTERRUPTED, None))
    interrupted = [job for job in resumed if job.view.error == INTERRUPTED]
    if interrupted:
        await core.journal_retrying([(job.view, None) for job in interrupted], [])
    core.quotas.reconcile(set(core.jobs))
    for job in resumed:  # rows came in id order: the original order
        core.push(job)
    for job in resumed:
        if job.view.error == INTERRUPTED:
            core.publish(job, EventKind.INTERRUPTED, requeued=True, error=INTERRUPTED)
        else:
            placement = estimates.placement(job)
            job.announced_position = placement.position
            core.publish(job, EventKind.QUEUED, recovered=True, position=placement.position,
                         eta_seconds=placement.eta_seconds)
    if given_up:
        await core.end(given_up)


def _restore(core: Core, view: JobView, tier: str, request: JobRequest) -> Job:
    job = Job(view=view, key=None, tier=tier, request=request,
              entry=QueuedJob(view.job_id, view.guild_id, view.member_id, request.cost, request.count, view.params))
    core.track(job)
    return job
