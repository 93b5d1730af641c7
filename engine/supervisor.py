"""Keeping one engine process running: starting it, waiting for it to be ready, restarting it when it dies.

:class:`EngineSupervisor` is the part of :class:`engine.client.EngineProcess`
that owns the engine process (an :class:`~engine.child.EngineChild`) and what it
said of itself at start (device, model, warm sizes), for the engine's health.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from engine.child import STOP_TIMEOUT_S, EngineChild
from engine.config import EngineSettings
from engine.protocol import BatchDone, EngineFaults, Ready, StartFailed
from engine.speed import SpeedMeter

log = logging.getLogger(__name__)

UNAVAILABLE = "The image engine is not available right now; please try again later."
SHUT_DOWN = "The image engine was shut down before this image was finished; please try again."

NO_MODEL = (
    "no model configured: set engine.model in config.yaml to a diffusers folder or a Hugging Face id "
    "(e.g. runwayml/stable-diffusion-v1-5, with engine.local_files_only: false to download it once), "
    "or run `dreamqueue make-tiny-model DIR` and set engine.model: DIR for a tiny offline test model"
)


class EngineStartError(RuntimeError):
    """The engine could not be started; the message tells the operator what to fix."""


class EngineUnavailable(Exception):
    """No engine process can take work right now (closing, or a restart failed)."""


@dataclass
class EngineStats:
    """What the engine's batches measured so far."""

    batches: int = 0
    images: int = 0
    oom_retries: int = 0
    peak_memory_bytes: int = 0
    last_batch_seconds: float = 0.0
    busy_seconds: float = 0.0
    safety_seconds: float = 0.0
    png_wait_seconds: float = 0.0
    free_memory_bytes: int | None = None
    speed: SpeedMeter = field(default_factory=SpeedMeter)

    def record(self, done: BatchDone, seconds: float) -> None:
        """Count batch ``done``, which took ``seconds`` from sending it to its answer."""
        images = sum(len(images) for images in done.images)
        self.batches += 1
        self.images += images
        self.oom_retries += done.oom_retries
        self.peak_memory_bytes = done.peak_memory_bytes
        self.last_batch_seconds = seconds
        self.busy_seconds += done.busy_seconds
        self.safety_seconds += done.safety_seconds
        self.png_wait_seconds += done.png_wait_seconds
        self.free_memory_bytes = done.free_memory_bytes
        self.speed.record(images, seconds)


class EngineSupervisor:
    """One engine process, started on demand and restarted after a crash or hang (see ``_replace``)."""

    def __init__(self, settings: EngineSettings, faults: EngineFaults | None = None) -> None:
        self.settings = settings
        self.faults = faults or EngineFaults()
        self._child: EngineChild | None = None
        self._starting: asyncio.Task[EngineChild] | None = None
        self._closing = False
        self._restarts: Counter[str] = Counter()  # by cause: crashed, hung
        self._device = ""
        self._model = ""
        self._detail = "not started"
        self._batch_size = 0
        self._sizes: tuple[tuple[int, int], ...] = ()
        self._safety_checker = ""
        self._stats = EngineStats()

    @property
    def _warm(self) -> tuple[str, tuple[tuple[int, int], ...]]:
        """What the engine is doing besides serving, and the sizes it has warm: its latest word on its background
        compile, or what it said when ready."""
        compiled = self._child.compiled if self._child is not None else None
        if compiled is None:
            return self._detail, self._sizes
        return compiled.detail, compiled.sizes

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

    async def _spawn(self) -> EngineChild:
        """Start an engine process and wait for it to report ready."""
        self._detail = "starting"
        child = EngineChild(self.settings, self.faults, self._on_exit)
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
                       sizes=sizes, free_memory_bytes=free, detail=detail):
                log.info(
                    "engine ready on %s with %s after %.1f s, %d images per UNet batch (pid %s)",
                    device, model, seconds, batch_size, child.process.pid,
                )
                self._device, self._model, self._detail, self._batch_size = device, model, detail, batch_size
                self._safety_checker, self._sizes, self._stats.free_memory_bytes = checker, sizes, free
                self._child = child
                return child
            case StartFailed(reason=reason):
                await asyncio.to_thread(child.process.join, STOP_TIMEOUT_S)
                raise EngineStartError(reason)
            case _:
                raise EngineStartError(f"the engine process exited while starting ({message}); see its log")

    def _on_exit(self, child: EngineChild) -> None:
        """An engine process exited: if it was the one serving, start a new one."""
        self._replace(child, "crashed")

    def _replace(self, child: EngineChild, cause: str) -> None:
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

    def _start_task(self) -> asyncio.Task[EngineChild]:
        """The start in progress, or a new one."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
            self._starting.add_done_callback(self._start_finished)
        return self._starting

    def _start_finished(self, task: asyncio.Task[EngineChild]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._detail = f"start failed: {task.exception()}"
            if self._restarts:  # a first start's failure is raised to whoever started it, who reports it
                log.error("engine restart failed: %s", task.exception())

    async def _ready_child(self) -> EngineChild:
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
