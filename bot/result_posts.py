"""Posting results: the grid with its buttons on the job's reply, or in its channel when the reply is gone or late.

Results of jobs that outlived a restart are posted too, unless the channel's
newest messages show the grid was posted and only its record was lost (so a
crash never posts it twice). A deleted channel is logged and the job recorded
as undeliverable, so a restart does not try again. Before a grid is posted,
the image safety check's verdicts decide whether it is withheld or spoilered
for review (:mod:`bot.screening`). A part of :class:`~bot.delivery.Delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import discord

from bot import render
from bot.scheduler.models import JobView
from bot.screening import Screening, spoil
from bot.status_edits import ATTACH_GRACE_S, TOKEN_LIFETIME_S, Reply, StatusEdits
from bot.views import result_view
from engine.types import GeneratedImage

log = logging.getLogger(__name__)

UNDELIVERABLE = "its message and channel were deleted, or the bot may no longer post there"
"""Recorded on a done job whose result could not be posted anywhere."""
RECENT_MESSAGES = 50
"""Messages searched, after a restart, for a result that was posted but not recorded (a crash in between)."""
_GONE = (discord.NotFound, discord.Forbidden)


class ResultPosts(StatusEdits):
    """Posts each done job's grid once (a part of :class:`~bot.delivery.Delivery`)."""

    _posting: set[int]
    _reply_for: Callable[..., Reply]
    screening: Screening

    async def _deliver(self, reply: Reply, images: tuple[GeneratedImage, ...]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reply.attached.wait(), ATTACH_GRACE_S)
        job = await self.services.dreams.job(reply.guild_id, reply.job_id)
        await self._post_result(reply, replace(job, images=images))

    def _claim(self, job_id: int) -> bool:
        """Take on telling a job's member of its end (its grid, or a notice); False if this process has already."""
        if job_id in self._posting:
            return False
        self._posting.add(job_id)
        return True

    async def _post_result(self, reply: Reply, job: JobView) -> None:
        """Post the grid with its buttons, record the message, and say where it went (once per job)."""
        if self._claim(job.job_id):
            await self._post(reply, job)

    async def _post(self, reply: Reply, job: JobView) -> None:
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
        # Claimed before the search: a job done while this bot connected also has its done event, whose post
        # the search could find and record, and the post's own record would then take it back as a second one.
        if not self._claim(job.job_id):
            return
        posted = await self._find_result(job)
        if posted is None:
            await self._post(self._reply_for(job, orphan=True), job)
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
