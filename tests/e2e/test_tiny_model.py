"""The whole path with the real engine process and a tiny random Stable Diffusion model (no download)."""

from __future__ import annotations

from pathlib import Path

from engine.pnginfo import read_parameters
from tests.e2e.conftest import World


async def test_dream_through_the_real_engine_posts_a_real_grid(world: World, tiny_model: Path) -> None:
    await world.start(engine={"simulated": False, "model": str(tiny_model), "device": "cpu"})
    ix = await world.dream(
        world.alice, prompt="a tiny test", count=4, steps=2, width=64, height=64, seed=5, sampler="euler"
    )
    queue = await world.fake.slash(world.bob, world.dreams, "queue")
    result = await world.result(ix, timeout=90)
    await queue.wait_response()
    await ix.wait_response()
    [attachment] = result.attachments
    grid = attachment.image()
    assert grid.format == "PNG" and grid.size == (2 * 64 + 4, 2 * 64 + 4)  # 2x2 with a 4 px gutter
    parameters = read_parameters(attachment.data)
    assert parameters is not None and "Seed: 5" in parameters and 'Seeds: "5, 6, 7, 8"' in parameters
    assert "Model: " in parameters and str(tiny_model) not in parameters  # a local folder shows by name only
