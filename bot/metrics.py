"""The bot's Prometheus metrics: what is measured, and the counting done outside the Discord layer.

One :class:`BotMetrics` per app, each in its own registry, so that several apps
in one process (tests) never share a series. Job figures come from the
scheduler's job events (:class:`JobWatcher`); the engine's from its own
``health()`` at scrape time (:class:`EngineCollector`); the services count
prompts, flags, reviews and admission refusals with one call each; the Discord
figures live in :mod:`bot.discord_metrics`. Nothing here imports discord.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.discord_metrics import DiscordMetrics
from bot.scheduler.errors import (
    Banned,
    DreamError,
    MemberQueueFull,
    OverTierLimit,
    Paused,
    QueueFull,
    QuotaExceeded,
    ServerQueueFull,
)
from bot.scheduler.events import EventKind, JobEvent, Subscription
from engine.types import RESTART_CAUSES, EngineClient
from moderation.filter import Verdict

WAIT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""Seconds: a job waits from a moment (an idle GPU) to an hour (a busy evening)."""
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
"""Seconds the event loop was late: over 0.1 members notice, over a second heartbeats suffer."""
QUOTA_REFUSALS = ("burst", "daily", "over_tier_limit", "member_queue_full", "server_queue_full", "queue_full", "banned",
                  "paused")
"""Why a ``/dream`` is refused at admission: the two quotas first, then the other limits."""
REVIEW_ACTIONS = ("dismiss", "remove", "warn", "ban")
QUEUE_STATES = ("queued", "running")
UNKNOWN = "unknown"
"""The label of a job whose server or tier the event did not say."""


def refusal_reason(error: DreamError) -> str | None:
    """The :data:`QUOTA_REFUSALS` label of a refusal at admission; None for other errors (bad request, stopping)."""
    match error:
        case QuotaExceeded(limit=limit):
            return limit
        case OverTierLimit():
            return "over_tier_limit"
        case MemberQueueFull():
            return "member_queue_full"
        case ServerQueueFull():
            return "server_queue_full"
        case QueueFull():
            return "queue_full"
        case Banned():
            return "banned"
        case Paused():
            return "paused"
    return None


class BotMetrics:
    """Every metric of one app, registered in :attr:`registry` (served by :mod:`bot.health`).

    ``prompt_categories`` and ``flag_reasons`` are labelled at zero from the start, so a
    rate over them is 0 (not absent) until the first prompt is blocked or image flagged.
    """

    def __init__(self, *, prompt_categories: Iterable[str] = (), flag_reasons: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        job = ["guild", "tier"]
        self.queue_wait = Histogram(
            "dreamqueue_queue_wait_seconds", "Seconds a job waited in the queue until the engine took it "
            "(each wait again after a requeue)", job, buckets=WAIT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.time_to_first_image = Histogram(
            "dreamqueue_time_to_first_image_seconds", "Seconds from a job's admission until its images were ready",
            job, buckets=WAIT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.images = Counter("dreamqueue_images", "Images made", job, registry=registry)
        self.jobs = Counter(
            "dreamqueue_jobs_finished", "Jobs that ended: done, failed, cancelled or interrupted (given up)",
            [*job, "outcome"], registry=registry,
        )  # fmt: skip
        self.requeued = Counter(
            "dreamqueue_jobs_requeued", "Jobs put back in the queue after an engine crash or hang, or a restart",
            job, registry=registry,
        )  # fmt: skip
        self.prompts_blocked = Counter("dreamqueue_prompts_blocked", "Prompts refused by the filter",
                                       ["category"], registry=registry)  # fmt: skip
        self.prompts_flagged = Counter("dreamqueue_prompts_flagged", "Prompts run but logged for the moderators",
                                       ["category"], registry=registry)  # fmt: skip
        self.images_withheld = Counter(
            "dreamqueue_images_withheld", "Generated images kept from the channel by the image safety check",
            registry=registry,
        )
        self.flags = Counter("dreamqueue_flags", "Flags members put on posted images (a repeat by the same "
                             "member not counted)", ["reason"], registry=registry)  # fmt: skip
        self.reviews = Counter("dreamqueue_review_actions", "Moderators' review decisions", ["action"],
                               registry=registry)  # fmt: skip
        self.quota_refusals = Counter("dreamqueue_quota_refusals", "/dream requests refused at admission",
                                      ["reason"], registry=registry)  # fmt: skip
        self.loop_lag = Histogram(
            "dreamqueue_event_loop_lag_seconds", "How late the event loop ran a timer (the lag probe's samples)",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self.discord = DiscordMetrics(registry)
        for category in prompt_categories:
            self.prompts_blocked.labels(category)
            self.prompts_flagged.labels(category)
        for reason in flag_reasons:
            self.flags.labels(reason)
        for action in REVIEW_ACTIONS:
            self.reviews.labels(action)
        for reason in QUOTA_REFUSALS:
            self.quota_refusals.labels(reason)

    def watch_engine(self, engine: EngineClient) -> None:
        """Read the engine's figures at every scrape."""
        self.registry.register(EngineCollector(engine))

    def watch_jobs(self, subscription: Subscription) -> JobWatcher:
        """Count jobs from ``subscription`` (made before the scheduler starts, to hear recovered jobs too)."""
        watcher = JobWatcher(self, subscription)
        self.registry.register(watcher)
        return watcher

    def prompt_checked(self, verdict: Verdict) -> None:
        """Count a prompt the filter blocked or flagged."""
        if verdict.action == "block":
            self.prompts_blocked.labels(verdict.category or UNKNOWN).inc()
        elif verdict.action == "flag":
            self.prompts_flagged.labels(verdict.category or UNKNOWN).inc()

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """Around a submit: count the refusal it raises, if it is one (see :func:`refusal_reason`)."""
        try:
            yield
        except DreamError as exc:
            reason = refusal_reason(exc)
            if reason is not None:
                self.quota_refusals.labels(reason).inc()
            raise

    def flagged(self, reason: str, counted: bool) -> None:
        """Count a member's flag (``counted`` False: they had flagged that image already)."""
        if counted:
            self.flags.labels(reason).inc()

    def reviewed(self, action: str) -> None:
        """Count a moderator's review decision: dismiss, remove, warn or ban."""
        self.reviews.labels(action).inc()


@dataclass
class _Tracked:
    """A job the watcher has seen admitted and not yet seen end."""

    labels: tuple[str, str]
    admitted_at: float
    queued_at: float
    state: str = "queued"


class JobWatcher(Collector):
    """Counts jobs from the scheduler's events, and reports the queue's depth by server, tier and state.

    A (server, tier) seen once keeps being reported, at 0 when empty, so that its series
    stays continuous rather than going stale between busy spells.
    """

    def __init__(self, metrics: BotMetrics, subscription: Subscription) -> None:
        self._metrics = metrics
        self._subscription = subscription
        self._jobs: dict[int, _Tracked] = {}
        self._seen: set[tuple[str, str]] = set()
        self._task = asyncio.create_task(self._run(), name="metrics-job-events")

    async def _run(self) -> None:
        async for event in self._subscription:
            self.observe(event)

    async def close(self) -> None:
        """Stop listening."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._subscription.close()

    def observe(self, event: JobEvent) -> None:
        """Update the counts and the queue for one event."""
        labels = (UNKNOWN if event.guild_id is None else str(event.guild_id), event.tier or UNKNOWN)
        metrics = self._metrics
        job = self._jobs.get(event.job_id)
        if job is None:
            job = self._jobs[event.job_id] = _Tracked(labels, event.at, event.at)
            self._seen.add(labels)
        kind = event.kind
        if kind is EventKind.REQUEUED or (kind is EventKind.INTERRUPTED and event.requeued):
            job.state, job.queued_at = "queued", event.at
            metrics.requeued.labels(*labels).inc()
        elif kind is EventKind.STARTED:
            job.state = "running"
            metrics.queue_wait.labels(*labels).observe(event.at - job.queued_at)
        elif kind is EventKind.DONE:
            metrics.images.labels(*labels).inc(len(event.images))
            metrics.time_to_first_image.labels(*labels).observe(event.at - job.admitted_at)
            self._end(event, labels)
        elif kind in (EventKind.FAILED, EventKind.CANCELLED, EventKind.INTERRUPTED):
            self._end(event, labels)

    def _end(self, event: JobEvent, labels: tuple[str, str]) -> None:
        self._metrics.jobs.labels(*labels, event.kind.value).inc()
        del self._jobs[event.job_id]

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily("dreamqueue_queue_jobs", "", labels=["guild", "tier", "state"])]

    def collect(self) -> Iterator[Metric]:
        depth = {(*labels, state): 0 for labels in self._seen for state in QUEUE_STATES}
        for job in self._jobs.values():
            depth[(*job.labels, job.state)] += 1
        family = GaugeMetricFamily("dreamqueue_queue_jobs", "Jobs waiting (queued) or on the engine (running)",
                                   labels=["guild", "tier", "state"])  # fmt: skip
        for labels, count in sorted(depth.items()):
            family.add_metric(labels, count)
        yield family


class EngineCollector(Collector):
    """The engine's own figures (``EngineClient.health()``), read at every scrape."""

    def __init__(self, engine: EngineClient) -> None:
        self._engine = engine

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: ``health()`` may name figures the registry need not know ahead

    def collect(self) -> Iterator[Metric]:
        health = self._engine.health()
        extra = health.extra
        yield GaugeMetricFamily("dreamqueue_engine_ready", "1 while the engine takes work", value=float(health.ready))
        yield GaugeMetricFamily("dreamqueue_engine_busy", "1 while the engine runs a batch", value=float(health.busy))
        yield CounterMetricFamily(
            "dreamqueue_engine_busy_seconds", "Seconds the engine kept its device generating, by its own timing "
            "(its rate is the busy fraction)", value=extra.get("busy_seconds", 0.0),
        )  # fmt: skip
        yield CounterMetricFamily("dreamqueue_engine_batches", "Batches the engine ran",
                                  value=extra.get("batches", 0.0))  # fmt: skip
        restarts = CounterMetricFamily("dreamqueue_engine_restarts", "Engine restarts, by cause", labels=["cause"])
        known = 0.0
        for cause in RESTART_CAUSES:
            count = extra.get(f"restarts_{cause}", 0.0)
            known += count
            restarts.add_metric([cause], count)
        if health.restarts > known:  # an engine that does not say why
            restarts.add_metric([UNKNOWN], health.restarts - known)
        yield restarts
        if "oom_retries" in extra:
            yield CounterMetricFamily("dreamqueue_engine_oom_retries", "Batches retried smaller after running "
                                      "out of memory", value=extra["oom_retries"])  # fmt: skip
        if "peak_memory_mb" in extra:
            yield GaugeMetricFamily("dreamqueue_engine_peak_memory_bytes", "Peak device memory of the last batch",
                                    value=extra["peak_memory_mb"] * 2**20)  # fmt: skip
