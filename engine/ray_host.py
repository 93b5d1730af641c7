"""What runs inside an engine's Ray actor: one local engine, its batches streamed back step by step.

:class:`EngineHost` imports nothing of Ray: :mod:`engine.ray_pool` makes it an
actor. It hosts :func:`engine.pool.local_engine` (the engine process with its
pipeline, watchdog and restarts, or the simulated engine), so an engine on a
cluster runs the same code as the engine of one machine. ``generate`` is an
async generator: Ray streams each :class:`~engine.types.Progress` to the bot
as it happens, then the results, whose images are PNG bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from engine.config import EngineSettings
from engine.pool import local_engine
from engine.protocol import EngineFaults
from engine.types import EngineHealth, JobRequest, JobResult, Progress


class EngineHost:
    """One engine inside a Ray actor; every method is called from the bot through the actor's handle."""

    def __init__(self, settings: EngineSettings, faults: EngineFaults | None = None) -> None:
        self.engine = local_engine(settings, faults)

    async def start(self) -> EngineHealth:
        """Start the engine (load and warm the model); its health once ready."""
        await self.engine.start()
        return self.engine.health()

    async def generate(self, jobs: Sequence[JobRequest]) -> AsyncIterator[Progress | list[JobResult]]:
        """Run ``jobs``: yield each step's progress as it comes, then the results (one per job, in order)."""
        steps: asyncio.Queue[Progress] = asyncio.Queue()
        batch = asyncio.ensure_future(self.engine.generate(jobs, steps.put_nowait))
        while not batch.done():
            step = asyncio.ensure_future(steps.get())
            await asyncio.wait({step, batch}, return_when=asyncio.FIRST_COMPLETED)
            if step.done():
                yield step.result()
            else:
                step.cancel()  # a queue's get cancelled while waiting leaves the queue as it was
        while not steps.empty():
            yield steps.get_nowait()
        yield batch.result()

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job the engine holds; False if it holds none by that id."""
        return await self.engine.cancel(job_id)

    async def health(self) -> EngineHealth:
        """The engine's health now."""
        return self.engine.health()

    async def close(self) -> None:
        """Stop the engine (the actor is killed after)."""
        await self.engine.close()
