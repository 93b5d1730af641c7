"""The scheduler's shared state and its one job record, which every part reads and moves along.

A :class:`Job` is born at admission, queued in the fair queue, handed to the
engine, and ends (journaled first, then announced) in :meth:`Core.end`. The
parts that move it -- :mod:`.admission`, :mod:`.dispatch`, :mod:`.recovery`,
:mod:`.admin` -- share one :class:`Core`; :mod:`.estimates` reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from bot.db import Database
from bot.scheduler.admin_tables import AdminTables
from bot.scheduler.clock import Clock
from bot.scheduler.config import QuotaSettings, SchedulerSettings
from bot.scheduler.errors import JobNotFound
from bot.scheduler.events import EventHub, EventKind, JobEvent
from bot.scheduler.fairqueue import FairQueue, QueuedJob
from bot.scheduler.journal import Journal
from bot.scheduler.models import AuditEntry, JobState, JobView
from bot.scheduler.modes import RELAX, RelaxTermsOf, queue_weight
from bot.scheduler.policy import Policy, ServerTierRoles
from bot.scheduler.quotas import QuotaBook, Who
from bot.scheduler.rows import read_view
from engine.pool import EnginePool, as_pool
from engine.types import EngineClient, GenerationParams, JobRequest, JobResult

log = logging.getLogger(__name__)

COST_PER_IMAGE_STEP = 512 * 512 // 4096
"""Cost units of one 512x512 image step (see ``JobRequest.cost``)."""
HOUR = 3600.0
OPERATOR = 0
"""The guild id of audit entries for the operator's changes to what every server shares."""
LOST = "this job's record was lost; please try again"


@dataclass(eq=False)
class Job:
    """A job the scheduler is responsible for (admitting, queued or running).

    ``view`` is the job as members see it, replaced as it moves through its
    states (queued → running → done | failed | cancelled | interrupted);
    ``request`` is what the engine is asked (validated once, at admission) and
    ``entry`` its place in the fair queue.
    """

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


Ending = tuple[Job, JobState, str | None, JobResult | None]
"""How a job ends: the job, its new state (QUEUED: back in the queue), the member-safe reason, the engine's result."""


@dataclass(eq=False)
class Lane:
    """One engine of the pool as the dispatcher drives it: the batch it runs and the shape it last ran."""

    number: int
    engine: EngineClient
    running: list[Job] = field(default_factory=list)
    handed: list[Job] | None = None
    """A batch another lane picked and handed to this idle one, which last ran its shape."""
    params: GenerationParams | None = None
    idle: bool = False
    batch_started: float = 0.0
    batch_cost: int = 0
    generating_since: float | None = None


@dataclass
class Figures:
    """Measured throughput and time accounting, written by dispatch and read by the estimates."""

    seconds_per_cost: float
    completions: deque[tuple[float, int, int, float]] = field(default_factory=deque)
    """(finished at, guild id, images, engine seconds) of the last hour's done jobs."""
    busy_seconds: float = 0.0
    backlog_seconds: float = 0.0
    accounted_at: float = 0.0


class Core:
    """Everything the scheduler's parts share: settings, engines, clock, rules, quotas, journal, queue and jobs."""

    def __init__(self, db: Database, engine: EngineClient | EnginePool, scheduler: SchedulerSettings,
                 quotas: QuotaSettings, max_batch_images: int, clock: Clock,
                 tier_roles: ServerTierRoles, relax_terms: RelaxTermsOf) -> None:  # fmt: skip
        self.settings = scheduler
        self.relax_terms = relax_terms
        """Each server's terms for relax jobs (its admins' settings)."""
        self.engine = as_pool(engine)
        """Every engine, as a pool (of one by default): what admission validates against and stats report."""
        self.clock = clock
        self.max_batch_images = max_batch_images
        self.policy = Policy(quotas, tier_roles)
        self.quotas = QuotaBook(quotas.daily_reset_hour_utc)
        self.journal = Journal(db, self.quotas.state)
        self.tables = AdminTables(self.journal)
        self.events = EventHub()
        self.queue = FairQueue()
        self.jobs: dict[int, Job] = {}
        self.active_by_member: Counter[Who] = Counter()
        self.active_by_server: Counter[int] = Counter()
        self.lanes: list[Lane] = []
        self.figures = Figures(scheduler.assumed_seconds_per_step / COST_PER_IMAGE_STEP)
        self.wake = asyncio.Event()
        self.open = False

    @property
    def running(self) -> list[Job]:
        """The jobs on the engines now, every engine's together."""
        return [job for lane in self.lanes for job in lane.running]

    @property
    def engine_count(self) -> int:
        """Engines that share the queue's work (at least one, for estimates while the pool is empty)."""
        return max(1, len(self.engine.engines))

    def active(self, guild_id: int, job_id: int) -> Job | None:
        """The server's queued or running job with this id; None if it is not active or another server's."""
        job = self.jobs.get(job_id)
        return job if job is not None and job.guild_id == guild_id else None

    async def view(self, guild_id: int, job_id: int) -> JobView:
        """The server's job as it is now (from memory while active, else from the journal); another server's job
        is "no such job"."""
        job = self.active(guild_id, job_id)
        if job is not None:
            return job.view
        row = await self.journal.job(guild_id, job_id)
        if row is None:
            raise JobNotFound()
        return read_view(row)

    def track(self, job: Job) -> None:
        """Hold a job admitted or recovered until it ends."""
        self.jobs[job.id] = job
        self.active_by_member[job.who] += 1
        self.active_by_server[job.guild_id] += 1

    def relax_jobs(self, who: Who) -> int:
        """The member's relax jobs admitted and not ended in the server."""
        return sum(1 for job in self.jobs.values() if job.who == who and job.view.mode == RELAX)

    def push(self, job: Job, *, front: bool = False) -> None:
        """Queue a job under its member's tier weight (a fraction of it for relax jobs) and its server's weight."""
        weight = queue_weight(job.view.mode, self.policy.limits(job.who, job.tier).weight,
                              self.relax_terms(job.guild_id))  # fmt: skip
        self.queue.push(job.entry, weight, self.policy.server_weight(job.guild_id), front=front)

    def forget(self, job: Job, *, refund: bool) -> None:
        """Drop a job from memory (and refund its charge if asked: it never made it into the journal)."""
        if refund:
            self.quotas.refund(job.who, job.id, self.clock.now())
        self.jobs.pop(job.id, None)
        self.active_by_member[job.who] -= 1
        if not self.active_by_member[job.who]:
            del self.active_by_member[job.who]
        self.active_by_server[job.guild_id] -= 1
        if not self.active_by_server[job.guild_id]:
            del self.active_by_server[job.guild_id]

    def publish(self, job: Job, kind: EventKind, **fields: object) -> None:
        view = job.view
        self.events.publish(JobEvent(kind, view.job_id, view.number, view.member_id, view.guild_id, view.channel_id,
                                     self.clock.now(), tier=job.tier, **fields))

    def audit(self, guild_id: int, actor_id: int, action: str, target: str, before: object,
              after: object) -> AuditEntry:  # fmt: skip
        return AuditEntry(guild_id, self.clock.now(), actor_id, action, target, before, after)

    def account(self) -> None:
        """Add the time since the last call to the backlog total if work was waiting (and not paused)."""
        now = self.clock.now()
        if (self.running or len(self.queue)) and not self.policy.paused:
            self.figures.backlog_seconds += now - self.figures.accounted_at
        self.figures.accounted_at = now

    async def end(self, endings: Iterable[Ending]) -> None:
        """Journal how jobs ended (refunding quota where due), then update memory and announce it."""
        endings = list(endings)
        now = self.clock.now()
        for job, state, _, _ in endings:
            if state in (JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED):
                self.quotas.refund(job.who, job.id, now)
            elif state is JobState.DONE:
                self.quotas.settle(job.who, job.id)
        changes = [(replace(job.view, state=state, error=error if state is not JobState.DONE else None,
                            finished_at=now if state.final else None), result) for job, state, error, result in endings]
        missing = await self.journal_retrying(changes, [job.who for job, _, _, _ in endings])
        requeued = [(job, error) for job, state, error, _ in endings if state is JobState.QUEUED]
        for job, error in reversed(requeued):  # reversed: the first of a member's jobs ends up at the head
            job.view = replace(job.view, state=JobState.QUEUED, error=error)
            self.push(job, front=True)
            self.publish(job, EventKind.REQUEUED, error=error)
        if requeued:
            self.wake.set()
        for job, state, error, result in endings:
            if state is JobState.QUEUED:
                continue
            if job.id in missing and state is not JobState.FAILED:
                log.error("journal row of job %s vanished; it ends as failed", job.id)
                state, error = JobState.FAILED, LOST
            job.view = replace(job.view, state=state, error=error, finished_at=now)
            self.forget(job, refund=False)
            if state is JobState.DONE:
                self.figures.completions.append(
                    (now, job.guild_id, job.request.count, result.seconds if result else 0.0))
                self.publish(job, EventKind.DONE, images=result.images if result else ())
            else:
                kind = {JobState.CANCELLED: EventKind.CANCELLED, JobState.INTERRUPTED: EventKind.INTERRUPTED}
                self.publish(job, kind.get(state, EventKind.FAILED), error=error)
            job.ended.set_result(job.view)

    async def journal_retrying(self, changes: list[tuple[JobView, JobResult | None]], members: list[Who]) -> set[int]:
        """Write job state changes, retrying while the database refuses: an outcome must not be lost."""
        while True:
            try:
                return await self.journal.end(changes, members)
            except Exception:
                log.exception("could not journal the end of jobs %s; retrying", [view.job_id for view, _ in changes])
                await self.clock.sleep(1.0)
