"""One engine process as the client holds it: the ``spawn``ed process, its pipe, and the thread reading it.

:class:`EngineChild` turns the engine's messages into an asyncio queue, except
:class:`~engine.protocol.Compiled`, which says what the engine has compiled so
far and is kept on the child (it comes between batches, when no one reads the
queue). A part of :class:`engine.client.EngineProcess`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.config import EngineSettings
from engine.protocol import Compiled, EngineFaults, Shutdown
from engine.worker import serve

STOP_TIMEOUT_S = 10.0
"""How long a stopping engine process may take to exit before it is killed."""


@dataclass(frozen=True)
class Exited:
    """The engine process's pipe closed: it exited or was killed."""

    exitcode: int | None


class EngineChild:
    """One engine process, and the thread that turns its messages into an asyncio queue."""

    def __init__(self, settings: EngineSettings, faults: EngineFaults, on_exit: Callable[[EngineChild], None]) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.on_exit = on_exit
        self.compiled: Compiled | None = None
        """The engine's latest word on its background compile; None until it compiled a shape."""
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
        if isinstance(message, Compiled):
            self.compiled = message
            return
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
