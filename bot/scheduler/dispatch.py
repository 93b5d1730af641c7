"""Dispatch: take the fairest batch, mark it running, run it on the engine, end each job; and cancel.

The dispatcher journals every outcome before announcing it. Failures and
cancellations refund the quota; an engine crash re-queues a job at the head of
its member's queue a configured number of times.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot.scheduler.admission import Admitter
from bot.scheduler.core import HOUR, LOST, Core, Ending, Job
from bot.scheduler.errors import NotYourJob, ServiceStopped
from bot.scheduler.estimates import Estimates
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState, JobView
from engine.types import JobResult, Outcome, Progress

log = logging.getLogger(__name__)


class Dispatcher:
    """Runs batches from the fair queue on the engine, one at a time, until closed."""

    def __init__(self, core: Core, estimates: Estimates, admitter: Admitter) -> None:
        self.core = core
        self.estimates = estimates
        self.admitter = admitter
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        self._last_prune = self.core.clock.now()
        self._task = asyncio.create_task(self._loop(), name="scheduler-dispatcher")
        self.core.wake.set()

    async def stop(self, grace_s: float) -> None:
        """Let the running batch finish (up to ``grace_s`` on the scheduler's clock), then stop."""
        if self._task is None:
            return
        self.core.wake.set()
        timer = asyncio.ensure_future(self.core.clock.sleep(grace_s))  # on the service's clock, like the engine's
        await asyncio.wait({self._task, timer}, return_when=asyncio.FIRST_COMPLETED)
        timer.cancel()
        self._task.cancel()
        await asyncio.gather(self._task, timer, return_exceptions=True)
        self._task = None
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
        elif job in core.running:
            job.cancel_reason = reason
            await core.engine.cancel(str(job.id))
        return await asyncio.shield(job.ended)

    async def _loop(self) -> None:
        core = self.core
        while core.open:
            batch = self._next_batch()
            if not batch:
                core.wake.clear()
                await core.wake.wait()
                continue
            try:
                await self._run_batch(batch)
            except Exception:
                log.exception("batch %s failed unexpectedly", [job.id for job in batch])
                stranded = [job for job in batch if job.id in core.jobs and job.id not in core.queue]
                await core.end([(job, JobState.FAILED, "an internal error stopped this job", None) for job in stranded])
            finally:
                core.account()
                core.running = []
            await self._housekeeping()

    def _next_batch(self) -> list[Job]:
        core = self.core
        if core.policy.paused:
            return []
        core.account()
        batch = [core.jobs[entry.job_id] for entry in core.queue.pick(core.max_batch_images)]
        for job in batch:
            job.view = replace(job.view, state=JobState.RUNNING)
        core.running = batch
        return batch

    async def _run_batch(self, batch: list[Job]) -> None:
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
        core.running = runnable
        figures.batch_started = now
        figures.batch_cost = sum(job.view.cost for job in runnable)
        for job in runnable:
            core.publish(job, EventKind.STARTED, attempt=job.view.attempts)
        self.estimates.announce_positions()
        figures.generating_since = now
        try:
            results = await core.engine.generate([job.request for job in runnable], self._on_progress)
        except Exception as exc:
            log.exception("engine.generate raised")
            results = [JobResult(str(job.id), Outcome.FAILED, error=f"the engine failed: {exc}", retryable=True)
                       for job in runnable]
        finally:
            figures.generating_since = None
        finished = core.clock.now()
        figures.busy_seconds += finished - now
        if all(result.outcome is Outcome.DONE for result in results):  # a crash or cancel says nothing of speed
            self.estimates.measure(finished - now, figures.batch_cost)
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
            self.core.publish(job, EventKind.PROGRESS, step=progress.step, steps=progress.steps)

    async def _housekeeping(self) -> None:
        now = self.core.clock.now()
        self.estimates.trim_completions(now)
        self.admitter.prune_keys(now)
        if now - self._last_prune >= HOUR:
            self._last_prune = now
            await self.core.journal.prune_images(now - self.core.settings.image_retention_hours * HOUR)
