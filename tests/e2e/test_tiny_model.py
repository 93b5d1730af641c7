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


async def test_an_image_the_real_classifier_flags_never_reaches_the_channel(
    world: World, tiny_model: Path, tmp_path: Path
) -> None:
    from engine.tiny import FLAGGED, write_safety_checker  # imports torch: only for this test

    checker = write_safety_checker(tmp_path / "checker", FLAGGED)  # flags every image, whatever it shows
    engine = {"simulated": False, "model": str(tiny_model), "device": "cpu", "safety_checker": str(checker)}
    await world.start(engine=engine)
    ix = await world.dream(world.alice, prompt="a tiny test", count=2, steps=2, width=64, height=64)
    await ix.wait_message(lambda m: m.ephemeral and "withheld by the safety check" in m.content, timeout=90)
    shown = await world.fake.wait_message(lambda m: bool(m.attachments), channel=world.mods)
    assert shown.attachments[0].spoiler and "checker scored 1.000 (flagged)" in str(shown.embeds[0]["fields"])
    assert not [e for e in world.fake.events if e.channel_id == world.dreams.id and e.message is not None
                and not e.message.ephemeral and e.message.attachments]  # fmt: skip
