"""Dispatch: each free engine of the pool takes the fairest batch, runs it, ends each job; and cancel.

Every engine has a lane: a loop that, when its engine is free, picks the next
batch from the one fair queue (as late as possible, so the order across
servers and members holds over the whole pool) and runs it. A batch whose
shape another idle engine ran last, or whose size only another idle engine
has warm (compiled at start), is handed to that engine and the lane picks
again. With one engine this is one loop, one batch at a time.

The dispatcher journals every outcome before announcing it. Failures and
cancellations refund the quota; an engine crash re-queues a job at the head of
its member's queue a configured number of times, while the other engines keep
serving.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import replace

from bot.scheduler.admission import Admitter
from bot.scheduler.core import HOUR, LOST, Core, Ending, Job, Lane
from bot.scheduler.errors import NotYourJob, ServiceStopped
from bot.scheduler.estimates import Estimates
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState, JobView
from engine.types import GenerationParams, JobResult, Outcome, Progress

log = logging.getLogger(__name__)


def suits(lane: Lane, shape: GenerationParams) -> int:
    """How well a lane's engine suits a batch of ``shape``: 4 it ran that shape last; else 2 if it has the
    batch's model loaded (that of the last batch it ran, the default before its first: swapping models costs
    far more than a cold size), plus 1 if it has the size warm (compiled, for a compiling engine)."""
    if lane.params == shape:
        return 4
    return 2 * (loaded_model(lane) == shape.model) + int((shape.width, shape.height) in lane.engine.health().sizes)


def loaded_model(lane: Lane) -> str:
    """The model the lane's engine has loaded: that of the last batch it ran (the default before its first)."""
    return lane.params.model if lane.params is not None else ""


class Dispatcher:
    """Runs batches from the fair queue on every engine of the pool, one batch per engine at a time, until closed."""

    def __init__(self, core: Core, estimates: Estimates, admitter: Admitter) -> None:
        self.core = core
        self.estimates = estimates
        self.admitter = admitter
        self._tasks: dict[Lane, asyncio.Task[None]] = {}
        self._numbers = itertools.count(1)
        self._last_prune = 0.0

    def start(self) -> None:
        self._last_prune = self.core.clock.now()
        self.core.engine.listen(self._engines_changed)
        self._engines_changed()

    def _engines_changed(self) -> None:
        """Give each engine that joined the pool a lane; lanes of engines that left end after their batch."""
        core = self.core
        driven = {id(lane.engine) for lane in core.lanes}
        for engine in core.engine.engines:
            if id(engine) not in driven:
                lane = Lane(next(self._numbers), engine)
                core.lanes.append(lane)
                self._tasks[lane] = asyncio.create_task(self._serve(lane), name=f"scheduler-engine-{lane.number}")
        core.wake.set()

    async def stop(self, grace_s: float) -> None:
        """Let the running batches finish (up to ``grace_s`` on the scheduler's clock), then stop."""
        self.core.engine.unlisten(self._engines_changed)
        if not self._tasks:
            return
        self.core.wake.set()
        lanes = asyncio.gather(*self._tasks.values(), return_exceptions=True)
        timer = asyncio.ensure_future(self.core.clock.sleep(grace_s))  # on the service's clock, like the engine's
        await asyncio.wait({lanes, timer}, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(lanes, timer, return_exceptions=True)
        self._tasks.clear()
        for job in self.core.jobs.values():
            if not job.ended.done():
                job.ended.set_exception(ServiceStopped())  # a cancel still waiting hears that the bot stopped
                job.ended.exception()  # ...and nobody else needs to: no "never retrieved" warning

    async def cancel(self, guild_id: int, job_id: int, actor_id: int, *, moderator: bool) -> JobView:
        """Cancel the server's queued or running job (refunded); a moderator's cancel of another's job is audited."""
        core = self.core
        job = core.active(guild_id, job_id)
        if job is not None:
            await self.admitter.settled(job)
            job = core.active(guild_id, job_id)
        if job is None:
            view = await core.view(guild_id, job_id)
            if view.member_id != actor_id and not moderator:
                raise NotYourJob(job_id)
            return view
        if job.member_id != actor_id and not moderator:
            raise NotYourJob(job_id)
        by_moderator = job.member_id != actor_id
        before = job.view.state
        view = await self._stop(job, "cancelled by a moderator" if by_moderator else "cancelled")
        if by_moderator:
            await core.tables.record_audit(core.audit(
                guild_id, actor_id, "cancel", f"job #{view.number} of member {job.member_id}", {"state": before},
                {"state": view.state, "error": view.error},
            ))
        return view

    async def cancel_member(self, guild_id: int, member_id: int, reason: str) -> list[JobView]:
        """Cancel every queued or running job of a member in the server (refunded), saying ``reason``; return them
        as they ended."""
        ended = []
        for job in [job for job in self.core.jobs.values() if job.who == (guild_id, member_id)]:
            await self.admitter.settled(job)
            if self.core.active(guild_id, job.id) is not None:  # not refused at its commit, nor ended meanwhile
                ended.append(await self._stop(job, reason))
        return ended

    async def _stop(self, job: Job, reason: str) -> JobView:
        """Cancel an active job: a queued one now, a running one through the engine; return it as it ended."""
        core = self.core
        if job.id in core.queue:
            core.account()
            core.queue.remove(job.id)
            await core.end([(job, JobState.CANCELLED, reason, None)])
        else:
            lane = next((lane for lane in core.lanes if job in lane.running), None)
            if lane is not None:
                job.cancel_reason = reason
                await lane.engine.cancel(str(job.id))
        return await asyncio.shield(job.ended)

    async def _serve(self, lane: Lane) -> None:
        """The lane's loop: while its engine is in the pool, take a batch whenever the engine is free and run it."""
        core = self.core
        try:
            while core.open and lane.engine in core.engine.engines:
                batch = self._take(lane)
                if not batch:
                    lane.idle = True
                    core.wake.clear()
                    await core.wake.wait()
                    lane.idle = False
                    continue
                try:
                    await self._run_batch(lane, batch)
                except Exception:
                    log.exception("batch %s failed unexpectedly", [job.id for job in batch])
                    stranded = [job for job in batch if job.id in core.jobs and job.id not in core.queue]
                    await core.end([(job, JobState.FAILED, "an internal error stopped this job", None)
                                    for job in stranded])
                finally:
                    core.account()
                    lane.running = []
                await self._housekeeping()
        finally:
            core.lanes.remove(lane)
            self._tasks.pop(lane, None)
            for job in reversed(lane.handed or []):  # handed a batch it never started: back to the queue's head
                job.view = replace(job.view, state=JobState.QUEUED)
                core.push(job, front=True)
            if lane.handed:
                core.wake.set()

    def _take(self, lane: Lane) -> list[Job]:
        """The batch this lane runs next: one handed to it, or the fairest; a batch that suits another idle
        engine better (it ran that shape last, or has that size warm) goes to that engine, and the lane picks
        again."""
        if lane.handed is not None:
            batch, lane.handed = lane.handed, None
            return batch
        while batch := self._next_batch(lane):
            shape = batch[0].request.params
            idle = [other for other in self.core.lanes if other.idle and other.handed is None
                    and other.engine in self.core.engine.engines]
            best = max(idle, key=lambda other: suits(other, shape), default=None)
            if best is None or suits(lane, shape) >= suits(best, shape):
                return batch
            lane.running, best.running, best.handed = [], batch, batch
            self.core.wake.set()
        return []

    def _next_batch(self, lane: Lane) -> list[Job]:
        core = self.core
        if core.policy.paused:
            return []
        core.account()
        capacity = int(lane.engine.health().extra.get("max_batch_images", core.max_batch_images))
        switch_cost = core.settings.model_switch_cost_s / core.figures.seconds_per_cost  # a swap, in GPU cost
        picked = core.queue.pick(min(core.max_batch_images, capacity), loaded_model(lane), switch_cost)
        batch = [core.jobs[entry.job_id] for entry in picked]
        for job in batch:
            job.view = replace(job.view, state=JobState.RUNNING)
        lane.running = batch
        return batch

    async def _run_batch(self, lane: Lane, batch: list[Job]) -> None:
        core, figures = self.core, self.core.figures
        now = core.clock.now()
        refused = await core.journal.mark_running([(job.guild_id, job.id) for job in batch], now)
        if refused:
            log.error("journal rows of jobs %s are missing or not queued; failing them", sorted(refused))
            await core.end([(job, JobState.FAILED, LOST, None) for job in batch if job.id in refused])
        runnable = []
        for job in batch:
            if job.id in refused:
                continue
            job.view = replace(job.view, started_at=now, attempts=job.view.attempts + 1)
            if job.cancel_reason:
                await core.end([(job, JobState.CANCELLED, job.cancel_reason, None)])
            else:
                runnable.append(job)
        if not runnable:
            return
        lane.running = runnable
        lane.batch_started = now
        lane.batch_cost = sum(job.view.cost for job in runnable)
        for job in runnable:
            core.publish(job, EventKind.STARTED, attempt=job.view.attempts)
        self.estimates.announce_positions()
        lane.generating_since, lane.params = now, runnable[0].request.params
        try:
            results = await lane.engine.generate([job.request for job in runnable], self._on_progress)
        except Exception as exc:
            log.exception("engine.generate raised")
            results = [JobResult(str(job.id), Outcome.FAILED, error=f"the engine failed: {exc}", retryable=True)
                       for job in runnable]
        finally:
            lane.generating_since = None
        finished = core.clock.now()
        figures.busy_seconds += finished - now
        if all(result.outcome is Outcome.DONE for result in results):  # a crash or cancel says nothing of speed
            self.estimates.measure(finished - now, lane.batch_cost)
        by_id = {result.job_id: result for result in results}
        await core.end([self._outcome(job, by_id.get(str(job.id))) for job in runnable])

    def _outcome(self, job: Job, result: JobResult | None) -> Ending:
        if result is None:
            return job, self._retry_or_fail(job), "the engine returned no result", None
        if job.cancel_reason or result.outcome is Outcome.CANCELLED:
            return job, JobState.CANCELLED, job.cancel_reason or "cancelled", result
        if result.outcome is Outcome.DONE:
            return job, JobState.DONE, None, result
        if result.retryable:
            return job, self._retry_or_fail(job), result.error, result
        return job, JobState.FAILED, result.error or "generation failed", result

    def _retry_or_fail(self, job: Job) -> JobState:
        return JobState.QUEUED if job.view.attempts <= self.core.settings.requeue_on_failure else JobState.FAILED

    def _on_progress(self, progress: Progress) -> None:
        job = self.core.jobs.get(int(progress.job_id))
        if job is not None:
            self.core.publish(job, EventKind.PROGRESS, step=progress.step, steps=progress.steps,
                              preview=progress.preview)  # fmt: skip

    async def _housekeeping(self) -> None:
        now = self.core.clock.now()
        self.estimates.trim_completions(now)
        self.admitter.prune_keys(now)
        if now - self._last_prune >= HOUR:
            self._last_prune = now
            await self.core.journal.prune_images(now - self.core.settings.image_retention_hours * HOUR)
