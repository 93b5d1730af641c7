"""The bot side of the engine: an async client that runs the engine process and talks to it.

:class:`EngineProcess` starts :func:`engine.worker.serve` in a ``spawn``ed
process, sends it one batch at a time and reads its answers on a thread, so the
event loop never blocks. A watchdog restarts an engine that dies or stops
reporting steps; the jobs it held fail with ``retryable=True`` and a reason safe
to show a member.

    async with EngineProcess(settings.engine) as engine:
        [result] = await engine.generate([job], on_progress=print)
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from engine.batching import plan_batches, refuse_invalid
from engine.child import EngineChild, Exited
from engine.config import EngineSettings
from engine.protocol import BatchDone, BatchFailed, BatchStopped, EngineFaults, Interrupt, RunBatch, Step
from engine.supervisor import SHUT_DOWN, EngineStartError, EngineSupervisor, EngineUnavailable
from engine.types import RESTART_CAUSES, EngineHealth, JobRequest, JobResult, Outcome, Progress, ProgressCallback

__all__ = ["CANCELLED", "CRASHED", "HUNG", "SHUT_DOWN", "EngineProcess", "EngineStartError"]

log = logging.getLogger(__name__)

CRASHED = "The image engine crashed while making this image. It has been restarted; please try again."
HUNG = "The image engine stopped responding while making this image. It has been restarted; please try again."
CANCELLED = "Cancelled."


@dataclass
class _RunningBatch:
    batch_id: int
    job_ids: frozenset[str]
    child: EngineChild


class EngineProcess(EngineSupervisor):
    """The engine client: one engine process serving batches, restarted when it crashes or hangs.

    ``faults`` injects failures inside the engine process, for tests only
    (see :class:`engine.protocol.EngineFaults`). ``silence(seconds)`` returns once
    the engine has been silent that long: :func:`asyncio.sleep` unless a test
    drives the watchdog with a clock of its own.
    """

    def __init__(
        self,
        settings: EngineSettings,
        *,
        faults: EngineFaults | None = None,
        silence: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(settings, faults)
        self.limits = settings.limits
        self._silence = silence
        self._gpu = asyncio.Lock()  # one batch at a time on the engine
        self._batch_ids = itertools.count(1)
        self._running: _RunningBatch | None = None
        self._pending: set[str] = set()
        self._cancelled: set[str] = set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def generate(
        self, jobs: Sequence[JobRequest], on_progress: ProgressCallback | None = None
    ) -> list[JobResult]:
        """Generate ``jobs``: compatible ones share a batch; one result per job, in order.

        A job that breaks the limits fails at once with an error naming the field;
        crashes, hangs and cancellations come back as results, never as exceptions.
        """
        if len({job.job_id for job in jobs}) < len(jobs):
            raise ValueError("job ids must be unique within one call")
        accepted, results = refuse_invalid(jobs, self.limits)
        self._pending.update(job.job_id for job in accepted)
        try:
            for batch in plan_batches(accepted, self.settings.max_batch_images):
                async with self._gpu:
                    results |= await self._run_batch(batch, on_progress)
        finally:
            for job in accepted:
                self._pending.discard(job.job_id)
                self._cancelled.discard(job.job_id)
        return [results[job.job_id] for job in jobs]

    async def cancel(self, job_id: str) -> bool:
        """Cancel a waiting or running job; False if the engine does not hold it.

        A running batch is stopped once every job in it is cancelled; otherwise it
        finishes for the others and the cancelled job's images are dropped.
        """
        if job_id not in self._pending:
            return False
        self._cancelled.add(job_id)
        running = self._running
        if running is not None and job_id in running.job_ids and running.job_ids <= self._cancelled:
            running.child.send(Interrupt(running.batch_id))
        return True

    def health(self) -> EngineHealth:
        """The engine's state, restarts and throughput figures."""
        stats = self._stats
        detail, sizes = self._warm
        return EngineHealth(
            ready=self._child is not None,
            busy=self._running is not None,
            restarts=self._restarts.total(),
            device=self._device,
            model=self._model,
            detail=detail,
            safety_checker=self._safety_checker,
            sizes=sizes,
            free_memory_mb=None if stats.free_memory_bytes is None else stats.free_memory_bytes / 2**20,
            images_per_second=stats.speed.images_per_second,
            extra={
                "batches": stats.batches,
                "images": stats.images,
                "oom_retries": stats.oom_retries,
                "peak_memory_mb": stats.peak_memory_bytes / 2**20,  # of the last batch
                "last_batch_seconds": stats.last_batch_seconds,
                "busy_seconds": stats.busy_seconds,  # device time spent generating, all batches so far
                "safety_seconds": stats.safety_seconds,  # time spent checking images, all batches so far
                "png_wait_seconds": stats.png_wait_seconds,  # answers waiting for PNGs after their last UNet batch
                "batch_size": self._batch_size,  # images per UNet batch, as set or measured at start
                "max_batch_images": self.settings.max_batch_images,  # most images of one call the scheduler sends
                **{f"restarts_{cause}": float(self._restarts[cause]) for cause in RESTART_CAUSES},
            },
        )

    async def _run_batch(self, jobs: list[JobRequest], on_progress: ProgressCallback | None) -> dict[str, JobResult]:
        """Run one batch on the engine; a result for every job in it, keyed by job id."""
        live = [job for job in jobs if job.job_id not in self._cancelled]
        results = {job.job_id: JobResult(job.job_id, Outcome.CANCELLED, error=CANCELLED) for job in jobs}
        if not live:
            return results
        try:
            child = await self._ready_child()
        except EngineUnavailable as exc:
            return results | self._failed(live, str(exc), retryable=True)
        batch_id = next(self._batch_ids)
        self._running = _RunningBatch(batch_id, frozenset(job.job_id for job in live), child)
        started = time.perf_counter()
        child.send(RunBatch(batch_id, tuple(live)))
        try:
            while True:
                message = await self._next_message(child)
                if message is None:
                    log.error(
                        "engine batch %d reported no step for %g s: killing the engine",
                        batch_id,
                        self.settings.watchdog_timeout_s,
                    )
                    child.kill()
                    self._replace(child, "hung")
                    return results | self._failed(live, HUNG, retryable=True)
                if isinstance(message, Step) and message.batch_id == batch_id:
                    await self._report(live, message, on_progress)
                elif isinstance(message, BatchDone) and message.batch_id == batch_id:
                    seconds = time.perf_counter() - started
                    self._stats.record(message, seconds)
                    return results | self._finished(live, message, seconds)
                elif isinstance(message, BatchStopped) and message.batch_id == batch_id:
                    return results | self._failed(live, SHUT_DOWN, retryable=True)  # stopped, but not by cancels alone
                elif isinstance(message, BatchFailed) and message.batch_id == batch_id:
                    return results | self._failed(live, message.reason, retryable=False)
                elif isinstance(message, Exited):
                    return results | self._failed(live, SHUT_DOWN if self._closing else CRASHED, retryable=True)
        finally:
            self._running = None

    async def _next_message(self, child: EngineChild) -> object | None:
        """The engine's next message, or None once it has been silent for ``watchdog_timeout_s``."""
        if not child.inbox.empty():
            return child.inbox.get_nowait()
        message = asyncio.ensure_future(child.inbox.get())
        timer = asyncio.ensure_future(self._silence(self.settings.watchdog_timeout_s))
        try:
            await asyncio.wait((message, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not message.done():
                message.cancel()  # a queue's get cancelled while waiting leaves the queue as it was
        return message.result() if message.done() and not message.cancelled() else None

    async def _report(self, jobs: list[JobRequest], step: Step, on_progress: ProgressCallback | None) -> None:
        if on_progress is None:
            return
        for index, job in enumerate(jobs):
            if job.job_id in self._cancelled:
                continue
            try:
                preview = step.previews[index] if step.previews else None
                outcome = on_progress(Progress(job.job_id, step.step, step.steps, preview))
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("progress callback failed for job %s", job.job_id)

    def _failed(self, jobs: Sequence[JobRequest], reason: str, *, retryable: bool) -> dict[str, JobResult]:
        """``jobs`` failed for ``reason``; those already cancelled stay cancelled."""
        return {
            job.job_id: JobResult(job.job_id, Outcome.FAILED, error=reason, retryable=retryable)
            for job in jobs
            if job.job_id not in self._cancelled
        }

    def _finished(self, jobs: list[JobRequest], done: BatchDone, seconds: float) -> dict[str, JobResult]:
        results = {}
        refused = done.refused or (None,) * len(jobs)
        for job, images, reason in zip(jobs, done.images, refused, strict=True):
            if job.job_id in self._cancelled:
                results[job.job_id] = JobResult(job.job_id, Outcome.CANCELLED, error=CANCELLED, seconds=seconds)
            elif reason is not None:
                results[job.job_id] = JobResult(job.job_id, Outcome.FAILED, error=reason, seconds=seconds)
            else:
                results[job.job_id] = JobResult(job.job_id, Outcome.DONE, images=images, seconds=seconds)
        return results
