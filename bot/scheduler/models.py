"""The value types the Discord layer sends to and gets back from :class:`~bot.scheduler.service.DreamService`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.scheduler.modes import Mode, RelaxTerms
from engine.types import GeneratedImage, GenerationParams


@dataclass(frozen=True)
class Member:
    """Who is asking: the Discord user id and the ids of their roles in the server, which decide their tier."""

    id: int
    role_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class DreamRequest:
    """One ``/dream``: what to draw, how, and where the answer goes.

    ``idempotency_key`` is the Discord interaction id: submitting the same key
    twice returns the first admission instead of queueing a second job.
    ``guild_id`` is the server the job belongs to: its quota, limits, bans and
    job numbers are that server's (DMs are refused before the scheduler).
    """

    member: Member
    guild_id: int
    prompt: str
    seeds: tuple[int, ...]
    idempotency_key: str
    params: GenerationParams = field(default_factory=GenerationParams)
    negative_prompt: str = ""
    channel_id: int | None = None
    upscale: bool = False
    """A 2x upscale of an image the tier allowed: its pixels may be 4x the tier's (its ``charge`` counts them)."""
    charge: int | None = None
    """Images taken from the quota (:func:`~bot.scheduler.quotas.images_charged`); None: one an image."""
    init_image: bytes | None = field(default=None, repr=False)
    """The start image of an img2img job (PNG of exactly the params' size); None: from noise."""
    mode: Mode = "fast"
    """fast: charged to the quota; relax: free, at a low weight (see :mod:`bot.scheduler.modes`)."""
    style: str = ""
    """The style already applied to ``prompt`` and ``negative_prompt``, kept to be shown with the result."""


class JobState(enum.StrEnum):
    """Where a job is in its life; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobView:
    """A snapshot of one job as the journal knows it.

    ``job_id`` is internal (button custom ids carry it); members see ``number``,
    which counts 1, 2, ... in each server.
    """

    job_id: int
    number: int
    member_id: int
    guild_id: int
    channel_id: int | None
    state: JobState
    prompt: str
    negative_prompt: str
    params: GenerationParams
    seeds: tuple[int, ...]
    cost: int
    created_at: float
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result_message_id: int | None = None
    undeliverable: str | None = None
    """Why a done job's result could not be posted (it will not be tried again)."""
    images: tuple[GeneratedImage, ...] = ()
    """A done job's images, where they were loaded to be posted (see ``DreamService.undelivered``); else empty."""
    mode: Mode = "fast"
    style: str = ""
    """The style applied to the prompt; empty for none."""
    status_message_id: int | None = None
    """The message that shows the job (its command's reply), once known: a restart goes on editing it."""


@dataclass(frozen=True)
class Placement:
    """Where a job stands: ``position`` 1 runs next (0 while running); ETA in seconds until its images are ready.

    Positions and ETAs are estimates from the current queue and measured
    throughput: newcomers entitled to their fair share may still go ahead.
    """

    job_id: int
    state: JobState
    position: int | None
    eta_seconds: float | None
    queue_length: int


@dataclass(frozen=True)
class Admission:
    """The answer to a successful submit. ``duplicate`` is True when the key had already been submitted."""

    job: JobView
    placement: Placement
    duplicate: bool = False


@dataclass(frozen=True)
class EffectiveLimits:
    """A member's limits right now: their tier, admin changes and overrides, and the global multiplier."""

    tier: str
    burst: int
    rate_per_hour: float
    daily_images: int
    max_images: int
    max_queued: int
    max_steps: int
    max_pixels: int
    weight: float


@dataclass(frozen=True)
class QuotaStatus:
    """Everything a member can ask about their quota, in one answer (times are unix seconds)."""

    tier: str
    limits: EffectiveLimits
    burst_left: int
    next_image_at: float | None
    """When one more image of burst comes back; None if the burst is full."""
    burst_full_at: float | None
    daily_left: int
    daily_resets_at: float
    queued_jobs: int
    banned_until: float | None = None
    banned: bool = False
    relax: RelaxTerms = field(default_factory=RelaxTerms)
    """The server's terms for relax jobs."""
    relax_jobs: int = 0
    """The member's relax jobs waiting or running."""


@dataclass(frozen=True)
class Ban:
    """A member barred from generating in one server; ``until`` None means until lifted."""

    guild_id: int
    member_id: int
    until: float | None
    reason: str
    banned_by: int
    banned_at: float

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class AuditEntry:
    """One admin change: who did what to what, in which server, the value before and after, and when.

    ``guild_id`` 0 marks an operator's change to what all servers share (pause,
    multiplier, server weights). ``before`` and ``after`` are stored as JSON.
    """

    guild_id: int
    at: float
    actor_id: int
    action: str
    target: str
    before: object
    after: object
    id: int | None = None
    """The row's id; None until stored."""


@dataclass(frozen=True)
class QueueSummary:
    """One server's share of the queue at a glance, for its members, and the length of the whole queue."""

    queued_jobs: int
    queued_images: int
    members_waiting: int
    running_jobs: tuple[int, ...]
    """The server's running jobs (internal ids)."""
    drain_seconds: float
    """Estimated time until everything now queued or running (in every server) is done."""
    paused: bool
    all_queued_jobs: int
    """Jobs queued in every server together."""


@dataclass(frozen=True)
class SchedulerStats:
    """Figures for a server's admins: the server's queue and throughput, and the shared GPU's."""

    queued_jobs: int
    queued_images: int
    running_jobs: int
    members_waiting: int
    jobs_last_hour: int
    images_last_hour: int
    all_queued_jobs: int
    """Jobs queued in every server together."""
    server_weight: float
    """The server's share of the GPU (operator-set; 1 unless changed)."""
    duty_cycle: float
    """Fraction of the time work was waiting (since start) that the engine was generating."""
    busy_seconds: float
    """Time spent inside the engine's ``generate`` since start."""
    backlog_seconds: float
    """Time since start during which work was queued or running (and the queue not paused)."""
    average_generation_seconds: float | None
    """Mean engine seconds per job over the last hour."""
    seconds_per_image_step: float
    """Measured throughput: seconds for one 512x512 image step (moving average)."""
    paused: bool
    multiplier: float
    engine: dict[str, object] = field(default_factory=dict)
