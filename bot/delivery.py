"""Keeping each member's message up to date: queue position, step progress, then the grid.

The delivery listens to the scheduler's job events. A job asked for through an
interaction has its reply edited in place: position and ETA, then a progress
bar (edits throttled to ``discord.progress_edit_interval_s``), then the grid
with its buttons. Past ``discord.late_result_after_s`` the interaction's token
is about to die, so the result goes out as a channel message that mentions the
member, as do results of jobs that outlived a restart (unless the channel's
newest messages show the grid was posted and only its record was lost, so a
crash never posts it twice). A deleted message falls back to the channel; a
deleted channel is logged and the job recorded as undeliverable (so a restart
does not try again), and nothing crashes.

:class:`Delivery` reads the events and routes them; its parts, by job, are
:mod:`bot.status_edits` (the throttled edits of a job's message),
:mod:`bot.result_posts` (posting grids) and :mod:`bot.end_notices` (telling
members how jobs ended without images).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord

from bot import render
from bot.end_notices import EndNotices
from bot.open_replies import OpenReply
from bot.replies import defer, placeholder_used
from bot.scheduler.events import EventKind, JobEvent
from bot.scheduler.models import Admission, JobState, JobView
from bot.screening import Screening
from bot.server import server_id
from bot.services import Services
from bot.status_edits import Reply
from bot.views import status_view

log = logging.getLogger(__name__)

REQUEUED = "The image engine had a problem; your job is back at the front of the queue."
ENDED = {JobState.FAILED: EventKind.FAILED, JobState.CANCELLED: EventKind.CANCELLED,
         JobState.INTERRUPTED: EventKind.INTERRUPTED}  # fmt: skip
"""The event that tells a member how a job ended without images, by the job's final state."""
LEFT_QUEUED = ("⚠️ The bot restarted while taking this request. Job #{number} is safe in the queue: its progress "
               "and images will be posted in this channel.")  # fmt: skip
LEFT_NOT_QUEUED = ("⚠️ The bot restarted before this request was queued. Nothing was charged to your quota; "
                   "please send it again.")  # fmt: skip


class Delivery(EndNotices):
    """Turns job events into message edits and posts. Create before ``DreamService.start`` to hear recoveries."""

    def __init__(self, bot: Any, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.screening = Screening(bot, services)
        self._events = services.dreams.subscribe()
        self._replies: dict[int, Reply] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._born = time.time()
        """Placeholders recorded before this are an earlier run's, for this one to answer."""
        self._posting: set[int] = set()
        """Jobs whose result this process is posting or has posted: a job done while the bot was connecting
        is both in the journal's undelivered results and in the events waiting to be read."""

    # lifecycle

    def start(self) -> None:
        """Start listening (posting waits until the bot is connected)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="delivery")
            self._runner.add_done_callback(self._done)  # a runner that dies says so now, not at the stop

    async def drain(self, timeout: float) -> None:
        """Handle the events already published and wait (up to ``timeout``) for the posts under way.

        A bot that never connected posts nothing: what it would have posted is in the journal for the next start.
        """
        if not self.bot.is_ready():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (event := self._events.get_nowait()) is not None:
                    self._handle(event)
                while self._tasks:
                    await asyncio.wait(set(self._tasks))

    async def stop(self) -> None:
        """Stop listening; posts under way are cancelled (undelivered results are posted after the restart)."""
        self._events.close()
        flushers = [reply.flusher for reply in self._replies.values()]  # progress edits of jobs still running
        tasks = [task for task in (self._runner, *self._tasks, *flushers) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        for left in await self.services.open_replies.left(self._born, time.time()):
            self._spawn(self._answer_left(left))
        for job in await self.services.dreams.undelivered():
            if job.state is JobState.DONE:
                self._spawn(self._redeliver(job))
            else:  # ended without images, and the member was not told before the restart
                self._spawn(self._end(self._reply_for(job, orphan=True), ENDED[job.state], job.error))
        async for event in self._events:
            try:
                self._handle(event)
            except Exception:
                log.exception("could not handle %s", event)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    # what the cogs call

    @asynccontextmanager
    async def admitting(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Acknowledge with a public placeholder, kept on record while the block admits its job: a bot that stops
        in between answers it at its next start. Call :meth:`queued` inside the block, straight after the submit."""
        # On record before it is shown: a bot stopped between the two would leave a placeholder nobody answers.
        async with self.services.open_replies.holding(OpenReply(
                server_id(interaction), interaction.id, interaction.application_id, interaction.token, time.time())):
            await defer(interaction, public=True)
            yield

    def queued(self, interaction: discord.Interaction, admission: Admission, note: str = "") -> None:
        """Show a just-admitted job on the interaction's reply and keep it updated from now on.

        Call it straight after the submit returns: the job's events are only
        read after that, so none is missed.
        """
        job = admission.job
        reply = self._reply_for(job)
        reply.interaction, reply.job, reply.note = interaction, job, note
        placeholder_used(interaction)
        reply.attached.set()
        self._show(reply, render.queued_embed(job, admission.placement, time.time(), note), status_view(job))

    async def _answer_left(self, left: OpenReply) -> None:
        """Answer a placeholder the last run left: its job is safe, or it was never queued."""
        job = await self.services.dreams.job_by_key(left.guild_id, str(left.interaction_id))
        text = LEFT_NOT_QUEUED if job is None else LEFT_QUEUED.format(number=job.number)
        webhook = discord.Webhook.partial(left.application_id, left.token, client=self.bot)
        try:  # "@original": the interaction's own reply, which has no message id of its own yet
            await webhook.edit_message("@original", content=text, embeds=[], view=None)  # type: ignore[arg-type]
        except discord.HTTPException as exc:  # answered with a refusal, which deleted it, or the token died
            log.info("could not answer the placeholder of interaction %s: %s", left.interaction_id, exc)
        await self.services.open_replies.answered(left)

    # events

    def _reply_for(self, job: JobView | JobEvent, *, orphan: bool = False) -> Reply:
        """The job's reply, made on first sight. An ``orphan`` (a job that outlived a restart) will never get an
        interaction: it goes on with the message that showed the job before, when the journal knows it."""
        reply = self._replies.get(job.job_id)
        if reply is None:
            reply = self._replies[job.job_id] = Reply(job.job_id, job.guild_id, job.channel_id)
            if orphan and isinstance(job, JobView):  # read from the journal, with its message
                reply.message_id = job.status_message_id
                reply.attached.set()
            elif orphan:
                self._spawn(self._adopt(reply))
        return reply

    async def _adopt(self, reply: Reply) -> None:
        """Take over the message that showed a recovered job before the restart, and show the job there."""
        try:
            job = await self.services.dreams.job(reply.guild_id, reply.job_id)
            reply.job, reply.message_id = job, job.status_message_id
        finally:
            reply.attached.set()  # the job's end, if it came meanwhile, waits for this
        if job.state is JobState.QUEUED:
            await self._show_placement(reply, job, "")

    def _handle(self, event: JobEvent) -> None:
        kind = event.kind
        reply = self._reply_for(event, orphan=event.recovered or kind is EventKind.INTERRUPTED)
        if kind in (EventKind.QUEUED, EventKind.POSITION, EventKind.REQUEUED):
            if reply.job is not None:  # else the command shows the placement when it attaches
                self._spawn(self._show_placement(reply, reply.job, REQUEUED if kind is EventKind.REQUEUED else ""))
        elif kind in (EventKind.STARTED, EventKind.PROGRESS):
            if reply.job is not None:
                steps = event.steps or reply.job.params.steps
                embed = render.progress_embed(reply.job, event.step or 0, steps, reply.note)
                self._show(reply, embed, status_view(reply.job), running=True, preview=event.preview)
        elif kind is EventKind.INTERRUPTED and event.requeued:
            self._spawn(self._tell(reply, "was interrupted by a restart and is back in the queue."))
        elif kind is EventKind.DONE:
            reply.ended = True
            del self._replies[event.job_id]
            self._spawn(self._deliver(reply, event.images))
        else:  # FAILED, CANCELLED, or INTERRUPTED for good
            reply.ended = True
            del self._replies[event.job_id]
            self._spawn(self._end(reply, kind, event.error))

    async def _show_placement(self, reply: Reply, job: JobView, note: str) -> None:
        placement = await self.services.dreams.placement(job.guild_id, job.job_id)
        if placement.position:
            embed = render.queued_embed(job, placement, time.time(), note or reply.note)
            self._show(reply, embed, status_view(job))

