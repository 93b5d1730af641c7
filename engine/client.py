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
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from engine.batching import plan_batches, refuse_invalid
from engine.config import EngineSettings
from engine.protocol import (
    BatchDone,
    BatchFailed,
    BatchStopped,
    EngineFaults,
    Interrupt,
    Ready,
    RunBatch,
    Shutdown,
    StartFailed,
    Step,
)
from engine.speed import SpeedMeter
from engine.types import (
    RESTART_CAUSES,
    EngineHealth,
    JobRequest,
    JobResult,
    Outcome,
    Progress,
    ProgressCallback,
)
from engine.worker import serve

log = logging.getLogger(__name__)

CRASHED = "The image engine crashed while making this image. It has been restarted; please try again."
HUNG = "The image engine stopped responding while making this image. It has been restarted; please try again."
UNAVAILABLE = "The image engine is not available right now; please try again later."
SHUT_DOWN = "The image engine was shut down before this image was finished; please try again."
CANCELLED = "Cancelled."

NO_MODEL = (
    "no model configured: set engine.model in config.yaml to a diffusers folder or a Hugging Face id "
    "(e.g. runwayml/stable-diffusion-v1-5, with engine.local_files_only: false to download it once), "
    "or run `dreamqueue make-tiny-model DIR` and set engine.model: DIR for a tiny offline test model"
)

STOP_TIMEOUT_S = 10.0
"""How long a stopping engine process may take to exit before it is killed."""


class EngineStartError(RuntimeError):
    """The engine could not be started; the message tells the operator what to fix."""


class EngineUnavailable(Exception):
    """No engine process can take work right now (closing, or a restart failed)."""


@dataclass(frozen=True)
class Exited:
    """The engine process's pipe closed: it exited or was killed."""

    exitcode: int | None


class _Child:
    """One engine process, and the thread that turns its messages into an asyncio queue."""

    def __init__(self, settings: EngineSettings, faults: EngineFaults, on_exit: Callable[[_Child], None]) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.on_exit = on_exit
        context = multiprocessing.get_context("spawn")
        self.conn, self._child_conn = context.Pipe()
        self.process = context.Process(
            target=serve,
            args=(self._child_conn, settings, faults, logging.getLogger().getEffectiveLevel()),
            name="dreamqueue-engine",
            daemon=True,
        )

    async def start(self) -> None:
        """Start the process (in a thread: spawning runs a new interpreter) and its reader."""
        await asyncio.to_thread(self.process.start)
        self._child_conn.close()  # so the engine's death reads as end-of-file here
        threading.Thread(target=self._read, name=f"engine-{self.process.pid}-reader", daemon=True).start()

    def _read(self) -> None:
        """Reader thread: forward every message to the event loop, then an :class:`Exited`."""
        while True:
            try:
                message: object = self.conn.recv()
            except (EOFError, OSError):
                self.process.join(STOP_TIMEOUT_S)
                message = Exited(self.process.exitcode)
            try:
                self.loop.call_soon_threadsafe(self._deliver, message)
            except RuntimeError:
                return  # the event loop is closed
            if isinstance(message, Exited):
                return

    def _deliver(self, message: object) -> None:
        self.inbox.put_nowait(message)
        if isinstance(message, Exited):
            self.on_exit(self)

    def send(self, message: object) -> None:
        """Send ``message``; a dead engine is reported by the reader, not here."""
        try:
            self.conn.send(message)
        except OSError:
            pass

    def kill(self) -> None:
        """Kill the engine process now (the reader then reports it exited)."""
        if self.process.pid is not None:
            self.process.kill()

    async def stop(self) -> None:
        """Ask the engine to exit; kill it if it does not within :data:`STOP_TIMEOUT_S`."""
        self.send(Shutdown())
        await asyncio.to_thread(self.process.join, STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.kill()
            await asyncio.to_thread(self.process.join)


@dataclass
class _RunningBatch:
    batch_id: int
    job_ids: frozenset[str]
    child: _Child


@dataclass
class _Stats:
    batches: int = 0
    images: int = 0
    oom_retries: int = 0
    peak_memory_bytes: int = 0
    last_batch_seconds: float = 0.0
    busy_seconds: float = 0.0
    safety_seconds: float = 0.0
    free_memory_bytes: int | None = None
    speed: SpeedMeter = field(default_factory=SpeedMeter)


class EngineProcess:
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
        self.settings = settings
        self.limits = settings.limits
        self.faults = faults or EngineFaults()
        self._silence = silence
        self._child: _Child | None = None
        self._starting: asyncio.Task[_Child] | None = None
        self._closing = False
        self._gpu = asyncio.Lock()  # one batch at a time on the engine
        self._batch_ids = itertools.count(1)
        self._running: _RunningBatch | None = None
        self._pending: set[str] = set()
        self._cancelled: set[str] = set()
        self._restarts: Counter[str] = Counter()  # by cause: crashed, hung
        self._device = ""
        self._model = ""
        self._detail = "not started"
        self._batch_size = 0
        self._sizes: tuple[tuple[int, int], ...] = ()
        self._safety_checker = ""
        self._stats = _Stats()

    async def __aenter__(self) -> EngineProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def pid(self) -> int | None:
        """The engine process's id while one is running (for operators and tests)."""
        return self._child.process.pid if self._child else None

    async def start(self) -> None:
        """Start the engine process and wait until the model is loaded and warm.

        Raises :class:`EngineStartError` when no model is configured, the model
        cannot be loaded, or it takes longer than ``start_timeout_s``.
        """
        if not self.settings.model:
            raise EngineStartError(NO_MODEL)
        self._closing = False
        if self._child is None:
            await asyncio.shield(self._start_task())

    async def close(self) -> None:
        """Stop the engine process; a batch still running fails with a retryable reason."""
        self._closing = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        child, self._child = self._child, None
        if child is not None:
            await child.stop()
        self._detail = "stopped"

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
        return EngineHealth(
            ready=self._child is not None,
            busy=self._running is not None,
            restarts=self._restarts.total(),
            device=self._device,
            model=self._model,
            detail=self._detail,
            safety_checker=self._safety_checker,
            sizes=self._sizes,
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
                "batch_size": self._batch_size,  # images per UNet batch, as set or measured at start
                "max_batch_images": self.settings.max_batch_images,  # most images of one call the scheduler sends
                **{f"restarts_{cause}": float(self._restarts[cause]) for cause in RESTART_CAUSES},
            },
        )

    async def _spawn(self) -> _Child:
        """Start an engine process and wait for it to report ready."""
        self._detail = "starting"
        child = _Child(self.settings, self.faults, self._on_exit)
        try:
            await child.start()
            message = await asyncio.wait_for(child.inbox.get(), self.settings.start_timeout_s)
        except TimeoutError:
            child.kill()
            raise EngineStartError(
                f"the engine did not load the model within engine.start_timeout_s ({self.settings.start_timeout_s:g} s)"
            ) from None
        except asyncio.CancelledError:
            child.kill()
            raise
        match message:
            case Ready(device=device, model=model, seconds=seconds, batch_size=batch_size, safety_checker=checker,
                       sizes=sizes, free_memory_bytes=free):
                log.info(
                    "engine ready on %s with %s after %.1f s, %d images per UNet batch (pid %s)",
                    device, model, seconds, batch_size, child.process.pid,
                )
                self._device, self._model, self._detail, self._batch_size = device, model, "ready", batch_size
                self._safety_checker, self._sizes, self._stats.free_memory_bytes = checker, sizes, free
                self._child = child
                return child
            case StartFailed(reason=reason):
                await asyncio.to_thread(child.process.join, STOP_TIMEOUT_S)
                raise EngineStartError(reason)
            case _:
                raise EngineStartError(f"the engine process exited while starting ({message}); see its log")

    def _on_exit(self, child: _Child) -> None:
        """An engine process exited: if it was the one serving, start a new one."""
        self._replace(child, "crashed")

    def _replace(self, child: _Child, cause: str) -> None:
        """Forget ``child`` (dead, or being killed, for ``cause``: one of :data:`RESTART_CAUSES`) and start a new
        engine, unless closing or already done."""
        if child is not self._child or self._closing:
            return
        log.error(
            "engine process %s is gone (exit code %s); starting a new one", child.process.pid, child.process.exitcode
        )
        self._child = None
        self._restarts[cause] += 1
        self._detail = "restarting"
        self._start_task()

    def _start_task(self) -> asyncio.Task[_Child]:
        """The start in progress, or a new one."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
            self._starting.add_done_callback(self._start_finished)
        return self._starting

    def _start_finished(self, task: asyncio.Task[_Child]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._detail = f"start failed: {task.exception()}"
            if self._restarts:  # a first start's failure is raised to whoever started it, who reports it
                log.error("engine restart failed: %s", task.exception())

    async def _ready_child(self) -> _Child:
        """The running engine, waiting for a start or restart in progress (or starting one)."""
        if self._closing:
            raise EngineUnavailable(SHUT_DOWN)
        if self._child is not None and self._child.process.is_alive():
            return self._child
        if self._child is not None:
            self._replace(self._child, "crashed")  # died an instant ago; its reader has not said so yet
        try:
            return await asyncio.shield(self._start_task())
        except EngineStartError as exc:
            raise EngineUnavailable(UNAVAILABLE) from exc

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
                    self._record(message, seconds)
                    return results | self._finished(live, message, seconds)
                elif isinstance(message, BatchStopped) and message.batch_id == batch_id:
                    return results | self._failed(live, SHUT_DOWN, retryable=True)  # stopped, but not by cancels alone
                elif isinstance(message, BatchFailed) and message.batch_id == batch_id:
                    return results | self._failed(live, message.reason, retryable=False)
                elif isinstance(message, Exited):
                    return results | self._failed(live, SHUT_DOWN if self._closing else CRASHED, retryable=True)
        finally:
            self._running = None

    async def _next_message(self, child: _Child) -> object | None:
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
        for job in jobs:
            if job.job_id in self._cancelled:
                continue
            try:
                outcome = on_progress(Progress(job.job_id, step.step, step.steps))
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

    def _record(self, done: BatchDone, seconds: float) -> None:
        stats = self._stats
        stats.batches += 1
        stats.images += sum(len(images) for images in done.images)
        stats.oom_retries += done.oom_retries
        stats.peak_memory_bytes = done.peak_memory_bytes
        stats.last_batch_seconds = seconds
        stats.busy_seconds += done.busy_seconds
        stats.safety_seconds += done.safety_seconds
        stats.free_memory_bytes = done.free_memory_bytes
        stats.speed.record(sum(len(images) for images in done.images), seconds)
