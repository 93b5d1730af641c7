"""Progress edits: the message that shows one job, edited in place at most every ``progress_edit_interval_s``.

:class:`Reply` is that message and what waits to be shown on it; the edits go
through the interaction while its token lives, then as a channel message edit.
The engine's latest preview of the image (when it sends them) rides along with
the next edit as the embed's picture; the job's final message drops it.
A part of :class:`~bot.delivery.Delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.scheduler.models import JobView
from bot.services import Services

log = logging.getLogger(__name__)

ATTACH_GRACE_S = 2.0
"""How long a finished job waits for the command that submitted it to attach its interaction."""
TOKEN_LIFETIME_S = 15 * 60 - 10
"""Discord's interaction tokens die at 15 minutes; later edits go through the channel."""
PREVIEW_FILE = "preview.jpg"


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
    pending: tuple[discord.Embed, discord.ui.View | None, bool] | None = None
    """The next state to show: its embed, its view, and whether it shows the preview (a running job's does)."""
    preview: bytes | None = None
    """The engine's newest preview of the image (a JPEG), not yet on the message."""
    preview_shown: bool = False
    """The message carries a preview, which a state without one (back in the queue, the end) removes."""
    last_edit: float = -1e9
    flusher: asyncio.Task[None] | None = None
    attached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the interaction is known, or known never to come (a job that outlived a restart)."""
    edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StatusEdits:
    """Throttled edits of a job's status message (a part of :class:`~bot.delivery.Delivery`)."""

    bot: Any
    services: Services

    def _show(
        self, reply: Reply, embed: discord.Embed, view: discord.ui.View | None, *, running: bool = False,
        preview: bytes | None = None,
    ) -> None:
        """Show this state next; edits of one message are at least ``progress_edit_interval_s`` apart, however often
        previews come. A ``running`` job's state shows ``preview`` as its picture, or the last one shown."""
        if reply.ended:
            return
        reply.pending = (embed, view, running)
        if not running or preview is not None:
            reply.preview = preview
        if reply.flusher is None or reply.flusher.done():
            reply.flusher = asyncio.create_task(self._flush(reply))

    async def _flush(self, reply: Reply) -> None:
        loop = asyncio.get_running_loop()
        while reply.pending is not None:
            wait = reply.last_edit + self.services.settings.discord.progress_edit_interval_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            embed, view, running = reply.pending
            preview, reply.pending, reply.preview = reply.preview, None, None
            fields: dict[str, Any] = {"embed": embed, "view": view}
            if preview is not None:
                fields["attachments"] = [discord.File(io.BytesIO(preview), PREVIEW_FILE)]
            elif not running and reply.preview_shown:
                fields["attachments"] = []  # a stale preview: the job is no longer running
            if running and (preview is not None or reply.preview_shown):
                embed.set_image(url=f"attachment://{PREVIEW_FILE}")
            async with reply.edit_lock:
                reply.last_edit = loop.time()
                if await self._edit_status(reply, **fields) is not None and "attachments" in fields:
                    reply.preview_shown = preview is not None

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
        """Edit the job's reply: through the interaction while its token lives, else as a channel message.

        The final edit of a job (once ``reply.ended``) removes a preview unless it sets attachments of its own.
        """
        if reply.ended and reply.preview_shown:
            fields.setdefault("attachments", [])
        try:
            if self._age(reply) < TOKEN_LIFETIME_S:
                assert reply.interaction is not None
                message = await reply.interaction.edit_original_response(**fields)
                if reply.message_id is None:  # journaled, so that a restart goes on editing this message
                    reply.message_id = message.id
                    await self.services.dreams.deliveries.record_status_message(reply.guild_id, reply.job_id,
                                                                                message.id)  # fmt: skip
                return message
            if reply.message_id is not None and reply.channel_id is not None:
                channel = self.bot.get_partial_messageable(reply.channel_id)
                return await channel.get_partial_message(reply.message_id).edit(**fields)
        except discord.HTTPException as exc:
            log.info("could not edit the reply of job %s: %s", reply.job_id, exc)
        return None
