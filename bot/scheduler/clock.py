"""Time for the scheduler: the system clock in production, a virtual clock in tests and benchmarks.

Everything that reads the time or waits takes a :class:`Clock`, so a test can
run an hour of queueing in milliseconds and land on exact instants.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

Settle = Callable[[], Awaitable[bool]]
"""Waits for outstanding real I/O; returns True if there was any (so the caller settles again)."""


class Clock(Protocol):
    """Unix-seconds time and a way to wait on it."""

    def now(self) -> float:
        """The current time in unix seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """A clock that only moves when told to: sleepers wake in deadline order as time is advanced.

    ``settle`` (optional) is awaited after every wake-up so that real I/O the
    woken tasks start (SQLite on its thread) finishes before time moves on;
    without it, only work that needs no real I/O is guaranteed to have run.
    """

    SPINS = 16
    """Event-loop passes that let woken tasks run to their next wait."""

    def __init__(self, start: float = 1_700_000_000.0, settle: Settle | None = None) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.settle_hook = settle

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), wake))
        await wake

    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes, or None if nobody sleeps."""
        self._drop_abandoned()
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every runnable task run until it waits on this clock (or on nothing at all)."""
        while True:
            for _ in range(self.SPINS):
                await asyncio.sleep(0)
            if self.settle_hook is None or not await self.settle_hook():
                return

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order on the way."""
        target = self._now + seconds
        await self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            await self.step()
        self._now = max(self._now, target)
        await self.settle()

    async def run(self, awaitable: Awaitable[T], *, patience: float = 5.0) -> T:
        """Run ``awaitable`` to completion, advancing time whenever everything waits on the clock.

        When nobody sleeps on the clock but the task is not done, it is given up to
        ``patience`` real seconds (it may be finishing real I/O the settle hook does
        not see) before this is called a deadlock.
        """
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            if await self.step():
                continue
            waited = 0.0
            while not task.done() and self.next_deadline() is None:
                if waited >= patience:
                    task.cancel()
                    raise RuntimeError("deadlock: the task waits on something other than this clock")
                await asyncio.wait({task}, timeout=0.01)
                waited += 0.01
        return task.result()

    async def step(self) -> bool:
        """Let runnable tasks run, then jump to the earliest deadline and wake everyone due; False if nobody sleeps."""
        await self.settle()
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)
        await self.settle()
        return True

    def _drop_abandoned(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
