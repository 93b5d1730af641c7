"""Job events for the Discord layer: what happened to a job, so it can edit or post a message.

Subscribe before :meth:`DreamService.start` to also hear what the restart did
(``interrupted`` and recovered ``queued`` events).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

from engine.types import GeneratedImage


class EventKind(enum.StrEnum):
    """What happened. The fields of :class:`JobEvent` that each kind fills are listed."""

    QUEUED = "queued"
    """Admitted (``position``, ``eta_seconds``), or recovered after a restart (``recovered``)."""
    POSITION = "position"
    """The predicted position changed (``position``, ``eta_seconds``), announced when a batch starts: at every
    change within the first places, further back once it moved by a tenth (see ``Estimates.announce_positions``)."""
    STARTED = "started"
    """Handed to the engine (``attempt``)."""
    PROGRESS = "progress"
    """A step of the running job (``step``, ``steps``, and ``preview`` when the engine made one)."""
    REQUEUED = "requeued"
    """The engine failed (crash or hang) and the job went back to the head of its queue (``error``)."""
    DONE = "done"
    """Images are ready (``images``); post them and call ``record_delivery``."""
    FAILED = "failed"
    """Final failure (``error``, safe to show); the quota was refunded."""
    CANCELLED = "cancelled"
    """Cancelled by the member or a moderator; the quota was refunded."""
    INTERRUPTED = "interrupted"
    """Running when the bot stopped: ``requeued`` says whether it was queued again or given up (refunded)."""


@dataclass(frozen=True)
class JobEvent:
    """One event about one job, with where to tell the member (``number`` is the one members see)."""

    kind: EventKind
    job_id: int
    number: int
    member_id: int
    guild_id: int
    channel_id: int | None
    at: float
    position: int | None = None
    eta_seconds: float | None = None
    step: int | None = None
    steps: int | None = None
    preview: bytes | None = None
    """A small JPEG of the job's image as it stands at ``step``."""
    attempt: int | None = None
    images: tuple[GeneratedImage, ...] = ()
    error: str | None = None
    requeued: bool = False
    recovered: bool = False
    tier: str | None = None
    """The member's quota tier when the job was admitted (every kind carries it)."""


class Subscription:
    """A stream of events; iterate it with ``async for``. Close it when done listening."""

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[JobEvent] = asyncio.Queue()

    def put(self, event: JobEvent) -> None:
        self._queue.put_nowait(event)

    async def get(self) -> JobEvent:
        return await self._queue.get()

    def get_nowait(self) -> JobEvent | None:
        """The next event if one is waiting."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aiter__(self) -> AsyncIterator[JobEvent]:
        while True:
            yield await self._queue.get()


class EventHub:
    """Fans events out to every subscription (each has its own unbounded queue)."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, event: JobEvent) -> None:
        for subscription in self._subscriptions:
            subscription.put(event)
