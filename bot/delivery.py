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
does not try again), and nothing crashes. Before a grid is posted, the image
safety check's verdicts decide whether it is withheld or spoilered for review
(:mod:`bot.screening`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import discord

from bot import render
from bot.replies import placeholder_used
from bot.scheduler.events import EventKind, JobEvent
from bot.scheduler.models import Admission, JobState, JobView
from bot.screening import Screening, spoil
from bot.services import Services
from bot.views import result_view, status_view
from engine.types import GeneratedImage

log = logging.getLogger(__name__)

ATTACH_GRACE_S = 2.0
"""How long a finished job waits for the command that submitted it to attach its interaction."""
TOKEN_LIFETIME_S = 15 * 60 - 10
"""Discord's interaction tokens die at 15 minutes; later edits go through the channel."""
REQUEUED = "The image engine had a problem; your job is back at the front of the queue."
UNDELIVERABLE = "its message and channel were deleted, or the bot may no longer post there"
"""Recorded on a done job whose result could not be posted anywhere."""
RECENT_MESSAGES = 50
"""Messages searched, after a restart, for a result that was posted but not recorded (a crash in between)."""
_GONE = (discord.NotFound, discord.Forbidden)
ENDED = {JobState.FAILED: EventKind.FAILED, JobState.CANCELLED: EventKind.CANCELLED,
         JobState.INTERRUPTED: EventKind.INTERRUPTED}  # fmt: skip
"""The event that tells a member how a job ended without images, by the job's final state."""


@dataclass(eq=False)
class Reply:
    """The message that shows one job, and what is waiting to be shown on it."""

    job_id: int
    guild_id: int
    channel_id: int | None
    interaction: discord.Interaction | None = None
    job: JobView | None = None
    """The job as admitted (set with the interaction)."""
    message_id: int | None = None
    note: str = ""
    """Shown with the job to the end (e.g. the prompt was cut)."""
    ended: bool = False
    """The job ended: only its final message may be shown now."""
    pending: tuple[discord.Embed, discord.ui.View | None] | None = None
    last_edit: float = -1e9
    flusher: asyncio.Task[None] | None = None
    attached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the interaction is known, or known never to come (a job that outlived a restart)."""
    edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Delivery:
    """Turns job events into message edits and posts. Create before ``DreamService.start`` to hear recoveries."""

    def __init__(self, bot: Any, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.screening = Screening(bot, services)
        self._events = services.dreams.subscribe()
        self._replies: dict[int, Reply] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._posting: set[int] = set()
        """Jobs whose result this process is posting or has posted: a job done while the bot was connecting
        is both in the journal's undelivered results and in the events waiting to be read."""

    # lifecycle

    def start(self) -> None:
        """Start listening (posting waits until the bot is connected)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="delivery")

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

    # events

    def _reply_for(self, job: JobView | JobEvent, *, orphan: bool = False) -> Reply:
        """The job's reply, made on first sight; an ``orphan`` will never get an interaction."""
        reply = self._replies.get(job.job_id)
        if reply is None:
            reply = self._replies[job.job_id] = Reply(job.job_id, job.guild_id, job.channel_id)
            if orphan:
                reply.attached.set()
        return reply

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
                self._show(reply, embed, status_view(reply.job))
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

    # throttled edits of the status message

    def _show(self, reply: Reply, embed: discord.Embed, view: discord.ui.View | None) -> None:
        """Show this state next; edits of one message are at least ``progress_edit_interval_s`` apart."""
        if reply.ended:
            return
        reply.pending = (embed, view)
        if reply.flusher is None or reply.flusher.done():
            reply.flusher = asyncio.create_task(self._flush(reply))

    async def _flush(self, reply: Reply) -> None:
        loop = asyncio.get_running_loop()
        while reply.pending is not None:
            wait = reply.last_edit + self.services.settings.discord.progress_edit_interval_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            embed, view = reply.pending
            reply.pending = None
            async with reply.edit_lock:
                reply.last_edit = loop.time()
                await self._edit_status(reply, embed=embed, view=view)

    async def _settle(self, reply: Reply) -> None:
        """Stop progress edits before the final one, so none lands after it."""
        reply.pending = None
        if reply.flusher is not None and not reply.flusher.done():
            reply.flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reply.flusher

    def _age(self, reply: Reply) -> float:
        """Seconds since the job's interaction was created (infinite without one)."""
        if reply.interaction is None:
            return math.inf
        return (discord.utils.utcnow() - reply.interaction.created_at).total_seconds()

    def _late(self, reply: Reply) -> bool:
        """Past ``late_result_after_s``: results go out as a channel message that notifies the member."""
        return self._age(reply) > self.services.settings.discord.late_result_after_s

    async def _edit_status(self, reply: Reply, **fields: Any) -> discord.Message | None:
        """Edit the job's reply: through the interaction while its token lives, else as a channel message."""
        try:
            if self._age(reply) < TOKEN_LIFETIME_S:
                assert reply.interaction is not None
                message = await reply.interaction.edit_original_response(**fields)
                reply.message_id = message.id
                return message
            if reply.message_id is not None and reply.channel_id is not None:
                channel = self.bot.get_partial_messageable(reply.channel_id)
                return await channel.get_partial_message(reply.message_id).edit(**fields)
        except discord.HTTPException as exc:
            log.info("could not edit the reply of job %s: %s", reply.job_id, exc)
        return None

    # the end of a job

    async def _deliver(self, reply: Reply, images: tuple[GeneratedImage, ...]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reply.attached.wait(), ATTACH_GRACE_S)
        job = await self.services.dreams.job(reply.guild_id, reply.job_id)
        await self._post_result(reply, replace(job, images=images))

    async def _post_result(self, reply: Reply, job: JobView) -> None:
        """Post the grid with its buttons, record the message, and say where it went (once per job)."""
        if job.job_id in self._posting:
            return
        self._posting.add(job.job_id)
        await self._settle(reply)
        screened = self.screening.decide(job)  # the image safety check: withhold, or spoiler for review
        if screened is not None and screened.action == "block":
            live = reply.interaction if self._age(reply) < TOKEN_LIFETIME_S else None
            await self.screening.withhold(job, screened.verdict, live, reply.message_id)
            return
        limit = reply.interaction.filesize_limit if reply.interaction else self._channel_upload_limit(job.channel_id)
        upload = await asyncio.to_thread(render.grid_upload, job, job.images, self.services.model, limit)
        seconds = job.finished_at - job.started_at if job.finished_at and job.started_at else None
        fields = {
            "embed": render.result_embed(job, upload, seconds, f"<@{job.member_id}>", reply.note),
            "view": result_view(job),
        }
        if screened is not None:
            spoil(fields["embed"])
        message = None
        if not self._late(reply):
            async with reply.edit_lock:
                file = upload.file(spoiler=screened is not None)
                message = await self._edit_status(reply, content=None, attachments=[file], **fields)
        if message is None:
            text = f"<@{job.member_id}> your dream is ready."
            message = await self._post_in_channel(job, text, upload.file(spoiler=screened is not None), **fields)
            if message is not None and reply.message_id is not None:
                await self._edit_status(reply, content=f"Finished: {message.jump_url}", embed=None, view=None)
        if message is None:
            log.warning("job %s: its channel %s is gone; the result cannot be delivered", job.job_id, job.channel_id)
            await self.services.dreams.record_undeliverable(job.guild_id, job.job_id, UNDELIVERABLE)
            return
        if not await self.services.dreams.record_delivery(job.guild_id, job.job_id, message.id):
            # Another bot process posted it first (its record won): take this copy back.
            log.warning("job %s: its result was already recorded; deleting the second post %s", job.job_id, message.id)
            with contextlib.suppress(discord.HTTPException):
                await message.delete()
        elif screened is not None:
            await self.screening.review(job, message, screened.verdict)

    async def _redeliver(self, job: JobView) -> None:
        """Post a result that finished before a restart, unless it was posted and only its record was lost."""
        posted = await self._find_result(job)
        if posted is None:
            await self._post_result(self._reply_for(job, orphan=True), job)
        else:
            log.info("job %s: its result was already posted as message %s; recording that", job.job_id, posted.id)
            await self.services.dreams.record_delivery(job.guild_id, job.job_id, posted.id)

    async def _find_result(self, job: JobView) -> discord.Message | None:
        """The bot's message carrying ``job``'s grid among the channel's newest :data:`RECENT_MESSAGES`, if any."""
        if job.channel_id is None:
            return None
        footer = render.job_footer(job.number)
        try:
            channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
            async for message in channel.history(limit=RECENT_MESSAGES):
                ours = message.author.id == self.bot.user.id and message.attachments
                if ours and any(embed.footer.text == footer for embed in message.embeds):
                    return message
        except _GONE as exc:
            log.info("job %s: cannot read channel %s: %s", job.job_id, job.channel_id, exc)
        return None

    def _channel_upload_limit(self, channel_id: int | None) -> int:
        channel = self.bot.get_channel(channel_id) if channel_id else None
        guild = getattr(channel, "guild", None)
        return guild.filesize_limit if guild is not None else render.DEFAULT_UPLOAD_LIMIT

    async def _post_in_channel(self, job: JobView, content: str, file: discord.File | None = None,
                               **fields: Any) -> discord.Message | None:  # fmt: skip
        """Post in the job's channel, mentioning only its member; None if the channel is gone."""
        if job.channel_id is None:
            return None
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.member_id)])
        try:
            channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
            if file is not None:
                fields["file"] = file
            return await channel.send(content, allowed_mentions=mention, **fields)
        except _GONE as exc:
            log.info("job %s: channel %s unavailable: %s", job.job_id, job.channel_id, exc)
            return None

    async def _end(self, reply: Reply, kind: EventKind, error: str | None) -> None:
        """Tell the member their job ended without images (once per job), and record that they were told."""
        if reply.job_id in self._posting:
            return
        self._posting.add(reply.job_id)
        titles = {EventKind.CANCELLED: "✖️ Cancelled", EventKind.INTERRUPTED: "⚠️ Interrupted by a restart"}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reply.attached.wait(), ATTACH_GRACE_S)
        await self._settle(reply)
        job = await self.services.dreams.job(reply.guild_id, reply.job_id)
        reason = "" if error in (None, "cancelled") else f"{error}\n"
        refund = f"{reason}Its images were given back to your quota."
        embed = render.ended_embed(job, titles.get(kind, "❌ Failed"), refund)
        async with reply.edit_lock:
            told = await self._edit_status(reply, embed=embed, view=None) is not None
        if not told:
            await self._post_in_channel(job, f"<@{job.member_id}> your job #{job.number} ended.", embed=embed)
        # Recorded even when the channel is gone, as an undeliverable grid is: nothing to retry after a restart.
        await self.services.dreams.record_told(job.guild_id, job.job_id)

    async def _tell(self, reply: Reply, text: str) -> None:
        """A one-line notice about a job without a live reply, in its channel, to its member."""
        job = await self.services.dreams.job(reply.guild_id, reply.job_id)
        await self._post_in_channel(job, f"<@{job.member_id}> your job #{job.number} {text}")
