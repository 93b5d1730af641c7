"""Where jobs stand and how fast the GPU goes: positions, ETAs, a server's queue summary and figures."""

from __future__ import annotations

import math
from dataclasses import asdict

from bot.scheduler.core import COST_PER_IMAGE_STEP, HOUR, Core, Job
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState, Placement, QueueSummary, SchedulerStats

EXACT_PLACES = 10
"""Queued jobs up to this place are told every move; a job further back is told when its place has moved by
``PLACE_STEP`` of the place it was last told since (so a batch start tells a few dozen members, not the whole
queue, and a long queue costs each batch a sort rather than an event per job)."""
PLACE_STEP = 0.1


class Estimates:
    """Reads the shared state and the measured throughput; the only write is the throughput's moving average."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def placement(self, job: Job) -> Placement:
        """Position (1 runs next, 0 while running) and ETA of an active job; None for both once it has left."""
        core = self.core
        if job.view.state is JobState.RUNNING:
            return Placement(job.id, JobState.RUNNING, 0, self.running_left(job), len(core.queue))
        if job.id not in core.queue:
            return Placement(job.id, job.view.state, None, None, len(core.queue))
        ahead = core.queue.position(job.id)
        return Placement(job.id, JobState.QUEUED, ahead + 1, self._eta(ahead, job, self.running_left()),
                         len(core.queue))

    def _eta(self, ahead: int, job: Job, running_left: float) -> float:
        """Seconds until a queued job with ``ahead`` jobs before it is done, an engine being free in
        ``running_left``."""
        core = self.core
        mean_cost = core.queue.total_cost / len(core.queue)
        # The jobs ahead share every engine; this one runs on one.
        return running_left + (ahead * mean_cost / core.engine_count + job.view.cost) * core.figures.seconds_per_cost

    def running_left(self, job: Job | None = None) -> float:
        """Expected seconds until the batch running ``job`` is done; without a job, until an engine is free."""
        core = self.core
        lanes = [lane for lane in core.lanes if job in lane.running] if job else core.lanes
        if not lanes or any(not lane.running for lane in lanes) or (job is None and len(lanes) < core.engine_count):
            return 0.0
        now, seconds_per_cost = core.clock.now(), core.figures.seconds_per_cost
        return min(max(0.0, lane.batch_started + lane.batch_cost * seconds_per_cost - now) for lane in lanes)

    def minutes_until_room(self) -> int:
        """Minutes until a tenth of the queue has been worked off (when asking again is likely to succeed)."""
        core = self.core
        seconds = self.running_left() + 0.1 * core.queue.total_cost * core.figures.seconds_per_cost / core.engine_count
        return max(1, math.ceil(seconds / 60))

    def measure(self, seconds: float, cost: int) -> None:
        """Fold a batch's engine time into the moving average of seconds per unit of cost."""
        if cost > 0 and seconds > 0:
            alpha = self.core.settings.throughput_smoothing
            self.core.figures.seconds_per_cost += alpha * (seconds / cost - self.core.figures.seconds_per_cost)

    def announce_positions(self) -> None:
        """Tell queued jobs' members their new position and ETA: within the first ``EXACT_PLACES`` at every
        change, further back when it moved by ``PLACE_STEP`` of the place last told."""
        core = self.core
        running_left = self.running_left()
        for position, entry in enumerate(core.queue.ordered(), start=1):
            job = core.jobs[entry.job_id]
            told = job.announced_position
            if told == position or (told is not None and position > EXACT_PLACES
                                    and abs(told - position) < told * PLACE_STEP):
                continue
            job.announced_position = position
            eta = self._eta(position - 1, job, running_left)
            core.publish(job, EventKind.POSITION, position=position, eta_seconds=eta)

    def trim_completions(self, now: float) -> None:
        completions = self.core.figures.completions
        while completions and completions[0][0] < now - HOUR:
            completions.popleft()

    def queue_summary(self, guild_id: int) -> QueueSummary:
        """The server's queue at a glance (jobs, images, members waiting, running jobs), the time until the whole
        queue is done, whether it is paused, and the whole queue's length."""
        core = self.core
        jobs, images, _, members = core.queue.server_load(guild_id)
        return QueueSummary(
            queued_jobs=jobs,
            queued_images=images,
            members_waiting=members,
            running_jobs=tuple(job.id for job in core.running if job.guild_id == guild_id),
            drain_seconds=self.running_left()
            + core.queue.total_cost * core.figures.seconds_per_cost / core.engine_count,
            paused=core.policy.paused,
            all_queued_jobs=len(core.queue),
        )

    def stats(self, guild_id: int) -> SchedulerStats:
        """Figures for a server's admins: its queue and last hour; the shared GPU's duty cycle and speed."""
        core, figures = self.core, self.core.figures
        now = core.clock.now()
        core.account()
        self.trim_completions(now)
        ours = [(images, seconds) for _, guild, images, seconds in figures.completions if guild == guild_id]
        busy = figures.busy_seconds + sum(now - lane.generating_since for lane in core.lanes
                                          if lane.generating_since is not None)
        jobs, images, _, members = core.queue.server_load(guild_id)
        return SchedulerStats(
            queued_jobs=jobs,
            queued_images=images,
            running_jobs=sum(1 for job in core.running if job.guild_id == guild_id),
            members_waiting=members,
            jobs_last_hour=len(ours),
            images_last_hour=sum(count for count, _ in ours),
            all_queued_jobs=len(core.queue),
            server_weight=core.policy.server_weight(guild_id),
            duty_cycle=busy / (figures.backlog_seconds * core.engine_count) if figures.backlog_seconds else 1.0,
            busy_seconds=busy,
            backlog_seconds=figures.backlog_seconds,
            average_generation_seconds=sum(s for _, s in ours) / len(ours) if ours else None,
            seconds_per_image_step=figures.seconds_per_cost * COST_PER_IMAGE_STEP,
            paused=core.policy.paused,
            multiplier=core.policy.multiplier,
            engine=asdict(core.engine.health()),
        )
