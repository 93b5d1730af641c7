"""Live previews on the status message: shown with the progress bar, throttled, gone from the final message."""

from __future__ import annotations

import itertools

from tests.e2e.conftest import World, has_text, shows_progress
from tests.fakediscord.records import Message


def shows_preview(message: Message) -> bool:
    """A message predicate: the progress bar with a preview as its picture."""
    return (
        shows_progress(message)
        and [a.filename for a in message.attachments] == ["preview.jpg"]
        and "preview.jpg" in str(message.embeds[0].get("image"))
    )


async def test_previews_ride_on_the_throttled_progress_edits_and_leave_with_the_result(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.06, "preview_every_steps": 2})
    ix = await world.dream(world.alice, prompt="many steps", count=1, steps=50)  # 3 s, 25 previews
    status = await ix.wait_message(shows_preview)
    assert status.attachments[0].image().size == (64, 64)  # a 512x512 image's latent size
    result = await world.result(ix)
    assert [a.filename for a in result.attachments] != ["preview.jpg"] and len(result.attachments) == 1
    edits = [e for e in ix.events if e.kind == "edit"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(edits[:-1])]  # the last edit (the result) is not throttled
    assert len(edits) <= 6 and all(gap >= 0.95 for gap in gaps), [round(g, 2) for g in gaps]
    uploads = [f for e in edits[:-1] for f in e.files if f.filename == "preview.jpg"]
    assert 1 <= len(uploads) <= len(edits) - 1  # at most one preview per edit, however many came


async def test_a_cancelled_job_drops_its_preview(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.2, "preview_every_steps": 1})
    ix = await world.dream(world.alice, prompt="slow", count=1, steps=30)
    status = await ix.wait_message(shows_preview)
    click = await world.fake.click(world.alice, status, label="Cancel")
    await click.wait_message(has_text("Cancelled job"))
    ended = await ix.wait_message(has_text("✖️ Cancelled"))
    assert ended.attachments == ()


async def test_no_previews_unless_configured(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="a cat", count=1, steps=8)
    await world.result(ix)
    assert not any(f.filename == "preview.jpg" for e in ix.events for f in e.files)
