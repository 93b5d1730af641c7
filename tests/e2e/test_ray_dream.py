"""A member's ``/dream`` with the engines on Ray (a cluster the bot starts in-process): the same as with one
engine, from command to grid; ``/admin stats`` counts the engines."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.conftest import World

pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]'): no Ray end-to-end test")

RAY_ENGINES = {
    "backend": "ray",
    "pool": {"min_engines": 2, "max_engines": 2},
    "ray": {"address": "local", "num_gpus": 0, "num_cpus": 0.25, "start_timeout_s": 300},
}


async def test_a_dream_through_ray_engines_posts_the_same_grid(world: World) -> None:
    app = await world.start(engine=RAY_ENGINES)
    assert app.engine.health().extra["engines"] == 2
    ix = await world.dream(world.alice, prompt="a lighthouse at dusk", count=4, seed=42)
    queued = await ix.wait_message(lambda m: bool(m.embeds) and "Queued" in (m.embeds[0].get("title") or ""))
    assert queued.custom_ids == [f"dq:cancel:{queued.embeds[0]['footer']['text'].split('#')[1]}"]
    result = await world.result(ix)
    [attachment] = result.attachments
    grid = Image.open(io.BytesIO(attachment.data))
    grid.load()
    assert grid.format == "PNG" and grid.size[0] > 64 and grid.size[1] > 64
    fields = {field["name"]: field["value"] for field in result.embeds[0]["fields"]}
    assert fields["Seeds"] == "42, 43, 44, 45"
    assert [button.get("label") for button in result.buttons] == ["Re-roll", "Flag", "Delete", "1", "2", "3", "4"]
    stats = await world.fake.slash(world.admin, world.dreams, "admin", "stats")
    shown = await stats.wait_message(lambda m: m.ephemeral)
    assert {field["name"]: field["value"] for field in shown.embeds[0]["fields"]}["Engines"] == "2 of 2 ready"
