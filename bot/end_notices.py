"""Telling members how their jobs ended without images (failed, cancelled, interrupted), once per job.

A part of :class:`~bot.delivery.Delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib

from bot import render
from bot.result_posts import ResultPosts
from bot.scheduler.events import EventKind
from bot.status_edits import ATTACH_GRACE_S, Reply


class EndNotices(ResultPosts):
    """Notices of jobs that ended without images (a part of :class:`~bot.delivery.Delivery`)."""

    async def _end(self, reply: Reply, kind: EventKind, error: str | None) -> None:
        """Tell the member their job ended without images (once per job), and record that they were told."""
        if not self._claim(reply.job_id):
            return
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
        if not told or reply.interaction is None:  # an edit of an older message notifies nobody
            await self._post_in_channel(job, f"<@{job.member_id}> your job #{job.number} ended.", embed=embed)
        # Recorded even when the channel is gone, as an undeliverable grid is: nothing to retry after a restart.
        await self.services.dreams.record_told(job.guild_id, job.job_id)

    async def _tell(self, reply: Reply, text: str) -> None:
        """A one-line notice about a job without a live reply, in its channel, to its member."""
        job = await self.services.dreams.job(reply.guild_id, reply.job_id)
        await self._post_in_channel(job, f"<@{job.member_id}> your job #{job.number} {text}")
