"""A member's ``/dream`` from command to grid, as Discord would see it."""

from __future__ import annotations

import io

from PIL import Image

from tests.e2e.conftest import World


async def test_dream_posts_a_decodable_grid_with_buttons(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="a lighthouse at dusk", count=4, seed=42)
    first = await ix.wait_response()
    assert first.deferred and not first.ephemeral
    queued = await ix.wait_message(lambda m: bool(m.embeds) and "Queued" in (m.embeds[0].get("title") or ""))
    assert queued.custom_ids == [f"dq:cancel:{queued.embeds[0]['footer']['text'].split('#')[1]}"]
    result = await world.result(ix)
    [attachment] = result.attachments
    grid = Image.open(io.BytesIO(attachment.data))
    grid.load()
    assert grid.format == "PNG" and grid.size[0] > 64 and grid.size[1] > 64
    embed = result.embeds[0]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Seeds"] == "42, 43, 44, 45"
    assert fields["Steps"] == "4" and fields["Size"] == "512×512"
    assert embed["image"]["url"].endswith(attachment.filename)
    labels = [button.get("label") for button in result.buttons]
    assert labels == ["Re-roll", "Flag", "Delete", "1", "2", "3", "4"]


async def test_commands_sync_to_the_guild_once(world: World) -> None:
    await world.start()
    fake = world.fake
    names = sorted((c["name"], c["type"]) for c in fake.synced_commands(world.guild))
    assert names == [
        ("Flag image", 3), ("admin", 1), ("cancel", 1), ("dream", 1), ("mod", 1), ("queue", 1), ("quota", 1),
        ("settings", 1), ("styles", 1),
    ]
    assert fake.synced_commands() == []  # nothing global: members never see a command twice
    syncs = len(fake.commands.syncs)
    await world.restart()
    assert len(fake.commands.syncs) == syncs  # unchanged definitions are not synced again
