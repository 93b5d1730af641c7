"""A job's status message: previews on a running job's edits only, re-uploaded only when new; the message is
journaled once, for a restart to go on editing it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord

from bot.status_edits import Reply, StatusEdits


class Interaction:
    """The interaction a job's reply is edited through: records each edit's fields."""

    def __init__(self) -> None:
        self.created_at = discord.utils.utcnow()
        self.edits: list[dict[str, Any]] = []

    async def edit_original_response(self, **fields: Any) -> Any:
        self.edits.append(fields)
        return SimpleNamespace(id=1)


class Deliveries:
    """The journal's record of status messages."""

    def __init__(self) -> None:
        self.recorded: list[tuple[int, int, int]] = []

    async def record_status_message(self, guild_id: int, job_id: int, message_id: int) -> None:
        self.recorded.append((guild_id, job_id, message_id))


def edits() -> tuple[StatusEdits, Reply, Interaction]:
    status = StatusEdits()
    status.services = SimpleNamespace(settings=SimpleNamespace(discord=SimpleNamespace(progress_edit_interval_s=0.0)),
                                      dreams=SimpleNamespace(deliveries=Deliveries()))  # fmt: skip
    interaction = Interaction()
    return status, Reply(1, 10, 20, interaction=interaction), interaction  # type: ignore[arg-type]


async def show(status: StatusEdits, reply: Reply, **options: Any) -> dict[str, Any]:
    """Show a state and wait for its edit; the edit's fields."""
    status._show(reply, discord.Embed(title="state"), None, **options)
    assert reply.flusher is not None
    await reply.flusher
    return reply.interaction.edits[-1]  # type: ignore[union-attr]


def image(fields: dict[str, Any]) -> str | None:
    return fields["embed"].image.url


async def test_a_preview_stays_while_running_and_goes_when_the_job_is_not() -> None:
    status, reply, _ = edits()
    first = await show(status, reply, running=True, preview=b"jpeg-1")
    assert [file.filename for file in first["attachments"]] == ["preview.jpg"]
    assert image(first) == "attachment://preview.jpg"
    same = await show(status, reply, running=True)  # a step without a new preview: nothing uploaded again
    assert "attachments" not in same and image(same) == "attachment://preview.jpg"
    queued = await show(status, reply)  # back in the queue after an engine failure: the preview is stale
    assert queued["attachments"] == [] and image(queued) is None
    assert not reply.preview_shown


async def test_the_final_edit_drops_the_preview_unless_it_sets_attachments_of_its_own() -> None:
    status, reply, interaction = edits()
    await show(status, reply, running=True, preview=b"jpeg-1")
    reply.ended = True
    await status._edit_status(reply, embed=None, view=None)
    assert interaction.edits[-1]["attachments"] == []
    await status._edit_status(reply, attachments=["the grid"])
    assert interaction.edits[-1]["attachments"] == ["the grid"]


async def test_a_job_never_previewed_keeps_its_attachments_alone() -> None:
    status, reply, interaction = edits()
    assert "attachments" not in await show(status, reply, running=True)
    reply.ended = True
    await status._edit_status(reply, embed=None)
    assert "attachments" not in interaction.edits[-1]


async def test_the_status_message_is_journaled_at_its_first_edit_only() -> None:
    status, reply, _ = edits()
    await show(status, reply)
    await show(status, reply, running=True)
    assert status.services.dreams.deliveries.recorded == [(10, 1, 1)] and reply.message_id == 1
