"""What members do after ``/dream``: buttons (also after a restart), ``/queue``, ``/cancel``, ``/quota``."""

from __future__ import annotations

import io

from PIL import Image

from engine.pnginfo import read_parameters
from tests.e2e.conftest import World, has_text, shows_progress


async def test_buttons_work_after_the_bot_restarts(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="a red fox", count=2, seed=7)
    result = await world.result(ix)
    await world.restart()

    image = await world.fake.click(world.bob, result, label="2")
    posted = await image.wait_message(lambda m: bool(m.attachments))
    assert not posted.ephemeral and "seed `8`" in posted.content
    assert "Seed: 8" in read_parameters(posted.attachments[0].data)

    reroll = await world.fake.click(world.bob, result, label="Re-roll")
    again = await world.result(reroll)
    fields = {f["name"]: f["value"] for f in again.embeds[0]["fields"]}
    assert again.embeds[0]["description"] == "a red fox" and fields["Seeds"] != "7, 8"
    assert fields["By"] == f"<@{world.bob.id}>"  # a re-roll is the clicker's job, on their quota

    flag = await world.fake.click(world.bob, result, label="Flag")
    modal = await flag.wait_modal()
    assert modal["title"] == "Flag this image"


async def test_delete_is_for_the_author_or_a_moderator_and_a_moderator_is_audited(world: World) -> None:
    app = await world.start()
    result = await world.result(await world.dream(world.alice, prompt="a teapot", count=1))
    denied = await world.fake.click(world.bob, result, label="Delete")
    message = await denied.wait_message(lambda m: m.ephemeral)
    assert "Only the member who made this image, or a moderator" in message.content
    assert not world.fake.message(result).deleted
    allowed = await world.fake.click(world.alice, result, label="Delete")
    await allowed.wait_message(has_text("Deleted the images of job"))
    assert world.fake.message(result).deleted
    # An author deleting their own image is not moderation:
    assert await app.services.audit.entries(world.guild.id) == []

    other = await world.result(await world.dream(world.bob, prompt="a kettle", count=1))
    by_moderator = await world.fake.click(world.moderator, other, label="Delete")
    await by_moderator.wait_message(has_text("Deleted the images of job"))
    assert world.fake.message(other).deleted
    [entry] = await app.services.audit.entries(world.guild.id)
    assert (entry.moderator_id, entry.action, entry.member_id) == (world.moderator.id, "deleted_image", world.bob.id)
    assert str(other.id) in entry.detail


async def test_queue_cancel_and_quota(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.2})
    running = await world.dream(world.alice, prompt="first", count=1, steps=20)
    await running.wait_message(shows_progress)  # running, so the second cannot join its batch
    waiting = await world.dream(world.alice, prompt="second", count=1, steps=20)
    await waiting.wait_message(has_text("Queued: #1 of"))

    queue = await world.fake.slash(world.alice, world.dreams, "queue")
    listing = await queue.wait_message(lambda m: m.ephemeral)
    jobs = listing.embeds[0]["fields"][0]["value"]
    assert "running" in jobs and "#1" in jobs and "second" in jobs

    quota = await world.fake.slash(world.alice, world.dreams, "quota")
    shown = (await quota.wait_message(lambda m: m.ephemeral)).embeds[0]
    fields = {f["name"]: f["value"] for f in shown["fields"]}
    assert shown["title"] == "Your quota: default tier" and fields["Burst"].startswith("**6** of 8 images")

    pick = await world.fake.autocomplete(world.alice, world.dreams, "cancel", focused="job", job=1)
    assert [choice["name"].split(": ")[1] for choice in await pick.wait_choices()] == ["first", "second"]
    cancel = await world.fake.slash(world.alice, world.dreams, "cancel")
    said = await cancel.wait_message(lambda m: m.ephemeral)
    assert said.content.count("cancelled") == 2
    for ix in (running, waiting):
        ended = await ix.wait_message(has_text("Cancelled"))
        assert ended.buttons == []
    again = await world.fake.slash(world.alice, world.dreams, "cancel")
    assert "You have no jobs waiting or running." in (await again.wait_message(lambda m: m.ephemeral)).content

    quota = await world.fake.slash(world.alice, world.dreams, "quota")
    shown = (await quota.wait_message(lambda m: m.ephemeral)).embeds[0]
    assert "**8** of 8 images" in shown["fields"][0]["value"]  # refunded


async def test_cancel_button_is_for_the_author(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.2})
    ix = await world.dream(world.alice, prompt="slow", count=1, steps=30)
    status = await ix.wait_message(lambda m: "dq:cancel" in str(m.custom_ids))
    denied = await world.fake.click(world.bob, status, label="Cancel")
    assert "is not yours" in (await denied.wait_message(lambda m: m.ephemeral)).content
    click = await world.fake.click(world.alice, status, label="Cancel")
    await click.wait_message(has_text("Cancelled job"))
    await ix.wait_message(has_text("✖️ Cancelled"))


async def test_progress_edits_are_throttled(world: World) -> None:
    await world.start(engine={"simulated_seconds_per_step": 0.06})
    ix = await world.dream(world.alice, prompt="many steps", count=1, steps=50)  # 3 s, 50 progress events
    await world.result(ix)
    edits = [e for e in ix.events if e.kind == "edit"]
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:-1])]  # the last edit (the result) is not throttled
    assert len(edits) <= 6 and all(gap >= 0.95 for gap in gaps), [round(g, 2) for g in gaps]
    assert any("Dreaming" in str(e.embeds) for e in edits)


async def test_grid_over_the_upload_limit_is_re_encoded(world: World) -> None:
    await world.start()
    world.guild.filesize_limit = 1_200  # the simulated engine's grid PNG is about 1,800 bytes
    ix = await world.dream(world.alice, prompt="a detailed city", count=4)
    result = await world.result(ix)
    [attachment] = result.attachments
    assert attachment.size <= 1_200 and not attachment.filename.endswith(".png")
    Image.open(io.BytesIO(attachment.data)).load()
    assert "upload limit" in str(result.embeds[0])


async def test_echoed_prompts_never_ping(world: World) -> None:
    await world.start()
    role = world.guild.add_role("Everyone-ish", mentionable=True)
    ix = await world.dream(world.alice, prompt=f"@everyone <@{world.bob.id}> <@&{role.id}> @here a cat", count=1)
    await world.result(ix)
    assert all(not e.message.mentions for e in ix.events if e.message is not None)
