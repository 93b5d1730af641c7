"""What members reach for after the first grid: vary, upscale and remix an image, and ``/dream`` from their own."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from bot.attachments import resized
from bot.scheduler.models import JobView, Member
from engine.simulated import SimulatedEngine
from engine.types import JobRequest, JobResult, Limits, ProgressCallback
from tests.e2e.conftest import World, has_text
from tests.fakediscord import FakeMember
from tests.fakediscord.errors import InvalidInteraction
from tests.fakediscord.records import Message

CONTROLS = ["Vary (subtle)", "Vary (strong)", "Upscale 2×", "Remix"]


def picture(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """An image with some structure (a gradient), encoded as ``fmt``."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


class RecordingEngine(SimulatedEngine):
    """The simulated engine drawing images at their full size, keeping every request it is given."""

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__(seconds_per_step=0.01, image_max_side=None, draw_in_thread=True, limits=limits)
        self.requests: dict[str, JobRequest] = {}

    async def generate(self, jobs: Any, on_progress: ProgressCallback | None = None) -> list[JobResult]:
        self.requests.update((job.job_id, job) for job in jobs)
        return await super().generate(jobs, on_progress)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds none: what a decompression bomb looks like
    before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def daily_left(world: World, who: FakeMember) -> int:
    assert world.app is not None
    return world.app.services.dreams.quota_status(world.guild.id, Member(who.id)).daily_left


async def newest_job(world: World, member: FakeMember) -> JobView:
    assert world.app is not None
    [job] = await world.app.services.dreams.member_jobs(world.guild.id, member.id, limit=1)
    return job


async def start_image(world: World, job: JobView) -> bytes | None:
    assert world.app is not None
    return await world.app.services.dreams.journal.init_image(world.guild.id, job.job_id)


def replies_to(message: Message, original: Message) -> bool:
    """Whether Discord shows ``message`` as the answer to a click on ``original``."""
    return message.raw["interaction_metadata"].get("interacted_message_id") == str(original.id)


async def private(ix: Any) -> str:
    return (await ix.wait_message(lambda m: m.ephemeral)).content


async def test_vary_subtle_and_strong_from_an_image_posted_alone(world: World) -> None:
    await world.start(controls={"vary_subtle_strength": 0.3, "vary_strong_strength": 0.8})
    grid = await world.result(await world.dream(world.alice, prompt="a red fox", count=2, seed=7, width=256,
                                                height=256))  # fmt: skip
    alone = await (await world.fake.click(world.alice, grid, label="2")).wait_message(lambda m: bool(m.attachments))
    assert [button["label"] for button in alone.buttons] == CONTROLS
    assert "Costs (charged to whoever clicks): Vary (subtle): 2 images for 1 of your quota, 25% of the GPU work" \
        in alone.content
    original = await newest_job(world, world.alice)
    [source] = [image for image in await world.app.services.dreams.images(world.guild.id, original.job_id)
                if image.seed == 8]  # fmt: skip
    before = daily_left(world, world.bob)

    for label, strength in (("Vary (subtle)", 0.3), ("Vary (strong)", 0.8)):
        click = await world.fake.click(world.bob, alone, label=label)
        varied = await world.result(click)
        assert replies_to(varied, alone) and "of image 2 of job #1" in str(varied.embeds[0])
        job = await newest_job(world, world.bob)  # the clicker's job, on their quota
        assert job.params.strength == strength and job.prompt == "a red fox"
        assert (job.params.width, job.params.height, job.params.steps) == (256, 256, 4)
        assert len(job.seeds) == 2 and set(job.seeds).isdisjoint({7, 8})
        assert await start_image(world, job) == resized(source.png, 256, 256)  # the image, at its job's size
        assert job.cost == 2 * int(4 * strength) * (256 * 256 // 4096)
    assert daily_left(world, world.bob) == before - 1 - 2  # their GPU work: 2 x 0.3 and 2 x 0.8, rounded up


async def test_upscale_makes_one_image_at_twice_the_size_and_charges_it(world: World) -> None:
    engine = RecordingEngine(Limits(max_upscale_side=1536))
    await world.start(engine_client=engine)
    grid = await world.result(await world.dream(world.alice, prompt="a castle", count=1, width=256, height=192))
    assert [button["label"] for button in grid.buttons] == ["Re-roll", "Flag", "Delete", *CONTROLS]
    before = daily_left(world, world.bob)

    click = await world.fake.click(world.bob, grid, label="Upscale 2×")
    upscaled = await world.result(click)
    assert replies_to(upscaled, grid)
    [attachment] = upscaled.attachments
    assert attachment.image().size == (512, 384)
    job = await newest_job(world, world.bob)
    assert (job.params.width, job.params.height, job.params.strength) == (512, 384, 0.3)
    assert job.cost == 1 * int(4 * 0.3) * (512 * 384 // 4096)
    asked = engine.requests[str(job.job_id)]
    assert asked.init_image == await start_image(world, job) and asked.params == job.params
    assert Image.open(io.BytesIO(asked.init_image or b"")).size == (512, 384)
    assert daily_left(world, world.bob) == before - 2  # 4x the pixels x 0.3 = 1.2 images' GPU work, rounded up
    quota = await world.fake.slash(world.bob, world.dreams, "quota")
    shown = str((await quota.wait_message(lambda m: m.ephemeral)).embeds[0])
    assert "**Vary (subtle)**: a grid as large as the image's, at 35% of its GPU work and of its images' quota" \
        " (4 images: 2)" in shown
    assert "**Upscale 2×**: one image, 4× its pixels at 30% of the steps (1.2× one image's GPU work: 2 of your" \
        " quota)" in shown

    # 1024×1024 is more pixels than the default tier's 768×768 makes, but an upscale of an image it made.
    square = await world.result(await world.dream(world.alice, prompt="a keep", count=1, width=512, height=512))
    assert (await world.result(await world.fake.click(world.alice, square, label="Upscale 2×"))
            ).attachments[0].image().size == (1024, 1024)  # fmt: skip
    too_big = await world.result(await world.dream(world.alice, prompt="a wide castle", count=1, width=1024,
                                                   height=64))  # fmt: skip
    refused = await world.fake.click(world.alice, too_big, label="Upscale 2×")
    assert "would be 2048×128; the largest this bot makes from an image is 1536×1536" in await private(refused)


async def test_remix_opens_the_prompt_and_filters_the_edit(world: World) -> None:
    await world.start()
    grid = await world.result(await world.dream(world.alice, prompt="a lighthouse", negative="fog", count=1,
                                                width=256, height=256))  # fmt: skip
    click = await world.fake.click(world.bob, grid, label="Remix")
    modal = await click.wait_modal()
    inputs = [label["component"] for label in modal["components"]]
    assert [field.get("value") for field in inputs] == ["a lighthouse", "fog", "0.7"]
    prompt, negative, strength = [field["custom_id"] for field in inputs]

    blocked = await world.fake.submit_modal(click, {prompt: "a N.U.D.E lighthouse", negative: "fog", strength: "0.7"})
    said = await private(blocked)
    assert "Matched: “N.U.D.E”" in said and "(sexual)" in said
    blocked = await world.fake.submit_modal(click, {prompt: "a lighthouse", negative: "white power", strength: "0.5"})
    assert "Matched in your negative prompt: “white power” (hate)" in await private(blocked)
    bad = await world.fake.submit_modal(click, {prompt: "a lighthouse", negative: "", strength: "lots"})
    assert "**strength**: must be a number above 0 and at most 1" in await private(bad)
    long = await world.fake.submit_modal(click, {prompt: "a lighthouse " * 60, negative: "", strength: "0.5"})
    assert "Your prompt is at least 120 tokens long" in await private(long)

    remixed = await world.fake.submit_modal(click, {prompt: "a lighthouse in snow", negative: "", strength: "0.5"})
    result = await world.result(remixed)
    assert "a lighthouse in snow" in str(result.embeds[0]) and "Remix of image 1 of job #1" in str(result.embeds[0])
    job = await newest_job(world, world.bob)
    assert (job.prompt, job.negative_prompt, job.params.strength) == ("a lighthouse in snow", "", 0.5)
    assert await start_image(world, job) is not None


@pytest.mark.parametrize(("name", "fmt", "size", "fitted"), [
    ("photo.png", "PNG", (300, 200), (296, 200)),
    ("photo.jpg", "JPEG", (1200, 800), (936, 624)),  # shrunk to the default tier's 768×768 pixels
])  # fmt: skip
async def test_dream_from_the_members_own_image(world: World, name: str, fmt: str, size: tuple[int, int],
                                                fitted: tuple[int, int]) -> None:  # fmt: skip
    await world.start()
    ix = await world.dream(world.alice, prompt="a watercolour", count=1, image=(name, picture(size, fmt)))
    result = await world.result(ix)
    assert "{}×{}".format(*fitted) in str(result.embeds[0])
    job = await newest_job(world, world.alice)
    assert (job.params.width, job.params.height, job.params.strength) == (*fitted, 0.7)
    start = Image.open(io.BytesIO(await start_image(world, job) or b""))
    assert start.format == "PNG" and start.size == fitted and start.mode == "RGB"

    before = daily_left(world, world.alice)
    ix = await world.dream(world.alice, prompt="a watercolour", count=3, image=(name, picture(size, fmt)),
                           strength=0.25, width=256, height=128)  # fmt: skip
    await world.result(ix)
    job = await newest_job(world, world.alice)
    assert (job.params.width, job.params.height, job.params.strength) == (256, 128, 0.25)
    assert daily_left(world, world.alice) == before - 1  # 3 images x 0.25 of the steps, rounded up

    assert world.app is not None  # forgetting the member deletes their pictures
    await world.app.services.forgetting.member(world.guild.id, world.alice.id, None)
    assert await start_image(world, job) is None


async def test_bad_start_images_are_refused_saying_what_is_wrong(world: World) -> None:
    app = await world.start()
    good = picture((64, 64))
    huge = good + bytes(40 * 2**20)  # a PNG with 40 MB behind it: refused on its declared size, never fetched
    cases = {
        "huge.png": (huge, "`huge.png` is 40.0 MB; start images may be at most 10.0 MB"),
        "cut.png": (picture((256, 256))[:300], "`cut.png` is damaged or cut short"),
        "notes.png": (b"these are my notes, not a picture\n" * 10, "`notes.png` is not a PNG, JPEG or WebP image"),
        "bomb.png": (png_header(5000, 4000), "`bomb.png` is 5000×4000 pixels; start images may have at most"),
        "giant.png": (png_header(20000, 20000), "`giant.png` declares more pixels than any start image may have"),
    }
    for name, (data, message) in cases.items():
        ix = await world.dream(world.alice, prompt="a watercolour", count=1, image=(name, data))
        assert message in await private(ix)
    fetched = [request for request in world.fake.requests if "/attachments/" in request.path]
    assert not any("huge.png" in request.path for request in fetched)
    assert await app.services.dreams.member_jobs(world.guild.id, world.alice.id) == []


async def test_strength_outside_0_to_1_or_without_an_image_is_refused_naming_it(world: World) -> None:
    await world.start()
    image = ("a.png", picture((64, 64)))
    with pytest.raises(InvalidInteraction):  # Discord's own client keeps to the option's range
        await world.dream(world.alice, prompt="x", image=image, strength=1.5)
    for strength in (1.5, -0.2, 0.0):  # a modified client does not
        ix = await world.fake.slash(world.alice, world.dreams, "dream", prompt="x", image=image, strength=strength,
                                    strict=False)  # fmt: skip
        assert "**strength**: must be above 0 and at most 1" in await private(ix)
    ix = await world.dream(world.alice, prompt="x", strength=0.5)
    assert "**strength**: needs a start image" in await private(ix)


async def test_every_control_works_after_a_restart_and_a_queued_start_image_survives_it(world: World) -> None:
    await world.start()
    grid = await world.result(await world.dream(world.alice, prompt="a red fox", count=1, width=256, height=256))
    pause = await world.fake.slash(world.admin, world.dreams, "admin", "pause")
    await pause.wait_message(lambda m: m.ephemeral)
    waiting = await world.fake.click(world.bob, grid, label="Vary (subtle)")
    await waiting.wait_message(has_text("Queued"))
    queued = await newest_job(world, world.bob)
    engine = RecordingEngine()
    await world.restart(engine_client=engine)

    resume = await world.fake.slash(world.admin, world.dreams, "admin", "resume")
    await resume.wait_message(lambda m: m.ephemeral)
    await world.fake.wait_message(lambda m: bool(m.attachments) and "Seeds" in str(m.embeds), channel=world.dreams)
    stored = await start_image(world, queued)
    assert stored and engine.requests[str(queued.job_id)].init_image == stored

    for label in CONTROLS[:3]:
        click = await world.fake.click(world.carol, grid, label=label)
        await world.result(click)
    remix = await world.fake.click(world.carol, grid, label="Remix")
    assert (await remix.wait_modal())["title"] == "Remix this image"


async def test_a_control_on_an_image_no_longer_kept_says_for_how_long_images_are_kept(world: World) -> None:
    app = await world.start()
    grid = await world.result(await world.dream(world.alice, prompt="a red fox", count=1, width=256, height=256))
    await world.result(await world.fake.click(world.bob, grid, label="Vary (subtle)"))
    varied = await newest_job(world, world.bob)
    assert await start_image(world, varied) is not None
    await app.services.dreams.journal.prune_images(before=app.services.dreams.clock.now() + 1)
    assert await start_image(world, varied) is None  # pruned with the images
    refused = await world.fake.click(world.bob, grid, label="Vary (strong)")
    assert "no longer kept: images are kept for 24 hours after they are posted" in await private(refused)


async def test_an_image_hidden_for_review_is_not_varied_until_the_moderators_clear_it(world: World) -> None:
    await world.start(moderation={"flags": {"alert_score": 1, "hide_score": 1}})
    grid = await world.result(await world.dream(world.alice, prompt="a duck", count=1, width=256, height=256))
    flag = await world.fake.click(world.bob, grid, label="Flag")
    modal = await flag.wait_modal()
    reason, note = [label["component"]["custom_id"] for label in modal["components"]]
    await (await world.fake.submit_modal(flag, {reason: ["sexual"], note: ""})).wait_message(lambda m: m.ephemeral)

    refused = await world.fake.click(world.carol, grid, label="Vary (strong)")
    assert "were hidden for the moderators to review" in await private(refused)
    alert = await world.fake.wait_message(channel=world.mods)
    dismiss = await world.fake.click(world.moderator, alert, label="Dismiss")
    await dismiss.wait_message(lambda m: m.ephemeral)
    await world.result(await world.fake.click(world.carol, grid, label="Vary (strong)"))


async def test_a_servers_admins_set_its_strengths(world: World) -> None:
    await world.start()
    settings = ("admin", "settings", "set")
    bad = await world.fake.slash(world.admin, world.dreams, *settings, key="vary_subtle_strength", value=0)
    assert "`vary_subtle_strength` must be more than 0 and at most 1; 0 is out of range." in await private(bad)
    good = await world.fake.slash(world.admin, world.dreams, *settings, key="vary_subtle_strength", value=0.5)
    assert "`vary_subtle_strength` is now 0.5 here." in await private(good)
    offered = await world.fake.autocomplete(world.admin, world.dreams, "admin", "settings", "set", focused="key",
                                            key="strength")  # fmt: skip
    assert [choice["value"] for choice in await offered.wait_choices()] == [
        "vary_subtle_strength", "vary_strong_strength", "upscale_strength"]

    grid = await world.result(await world.dream(world.alice, prompt="a red fox", count=1, width=256, height=256))
    await world.result(await world.fake.click(world.bob, grid, label="Vary (subtle)"))
    assert (await newest_job(world, world.bob)).params.strength == 0.5
