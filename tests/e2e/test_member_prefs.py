"""``/settings``, styles, aspect ratios, fast and relax modes, and the model option, through the fake Discord."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World, has_text
from tests.e2e.test_tenancy import private
from tests.fakediscord.records import Message


def field(message: Message, name: str) -> str | None:
    """The value of the named field of the message's first embed (None: no such field)."""
    return next((f["value"] for f in message.embeds[0].get("fields", []) if f["name"] == name), None)


async def settings(world: World, *subcommand: str, **options: Any) -> str:
    return await private(await world.fake.slash(world.alice, world.dreams, "settings", *subcommand, **options))


async def test_settings_are_used_by_dream_overridden_by_its_options_reset_and_kept_over_a_restart(
    world: World,
) -> None:
    await world.start()
    saved = await settings(world, "set", aspect="16:9", steps=6, negative="text", count=1)
    assert "Saved." in saved and "'name': 'aspect', 'value': '**16:9**'" in saved
    result = await world.result(await world.fake.slash(world.alice, world.dreams, "dream", prompt="a cat"))
    assert (field(result, "Size"), field(result, "Steps"), field(result, "Negative")) == ("704×384", "6", "text")
    assert len(field(result, "Seeds").split(", ")) == 1
    given = await world.result(await world.dream(world.alice, prompt="a dog", steps=3, width=512, height=768))
    assert (field(given, "Size"), field(given, "Steps")) == ("512×768", "3")  # what /dream is given wins
    others = await world.result(await world.dream(world.bob, prompt="a dog", count=1))  # alice's are alice's
    assert (field(others, "Size"), field(others, "Negative")) == ("512×512", None)

    await world.restart()
    shown = await settings(world, "show")
    assert "'name': 'steps', 'value': '**6**'" in shown and "'name': 'sampler', 'value': 'DPM++ 2M Karras *(default)*'" in shown
    assert "**relax**: free" in shown  # what each mode costs
    assert "`steps` is back" in await settings(world, "reset", option="steps")
    reset = await settings(world, "reset")
    assert "All your defaults are back" in reset and reset.count("*(default)*") == 10  # nothing of theirs is set
    plain = await world.result(await world.fake.slash(world.alice, world.dreams, "dream", prompt="a cat", count=1))
    assert (field(plain, "Size"), field(plain, "Steps"), field(plain, "Negative")) == ("512×512", "25", None)
    refused = await settings(world, "set", width=500, strict=False)
    assert "**width**: must be a multiple of 8" in refused


async def test_config_and_server_styles_are_applied_before_the_filter_and_shown_with_the_result(world: World) -> None:
    world.config["styles"] = {"oil": {"prompt": "{prompt}, oil painting", "negative": "blurry"},
                              "risque": {"prompt": "{prompt}, nude"}}  # fmt: skip
    await world.start()
    member_add = await world.fake.slash(world.alice, world.dreams, "styles", "add", name="ink", prompt="{prompt}, ink")
    assert "Only this server's bot admins" in await private(member_add)
    added = await world.fake.slash(world.admin, world.dreams, "styles", "add", name="ink",
                                   prompt="an ink drawing of {prompt}")  # fmt: skip
    assert "Style `ink` added" in await private(added)
    no_placeholder = await world.fake.slash(world.admin, world.dreams, "styles", "add", name="bad", prompt="ink")
    assert "**prompt** must contain {prompt}" in await private(no_placeholder)
    choices = await (await world.fake.autocomplete(world.alice, world.dreams, "dream", focused="style", prompt="x",
                                                   style="")).wait_choices()  # fmt: skip
    assert [choice["value"] for choice in choices] == ["none", "oil", "risque", "ink"]
    # A style the filter blocks would block everyone who chose it; a negative prompt is checked as /dream checks it.
    lewd = await world.fake.slash(world.admin, world.dreams, "styles", "add", name="lewd", prompt="{prompt}, nude")
    assert "**prompt**: the server's filter blocks it (sexual: `nude`)" in await private(lewd)
    mail = await world.fake.slash(world.admin, world.dreams, "styles", "add", name="mail", prompt="{prompt}, x",
                                  negative="mail me at jo@example.com")  # fmt: skip
    assert "**negative**: the server's filter blocks it (" in await private(mail)
    kept_out = await world.fake.slash(world.admin, world.dreams, "styles", "add", name="clean", prompt="{prompt}, x",
                                      negative="nude")  # fmt: skip
    assert "Style `clean` added" in await private(kept_out)

    oil = await world.result(await world.dream(world.alice, prompt="a harbour", negative="people", style="oil", count=1))
    assert oil.embeds[0]["description"] == "a harbour, oil painting" and field(oil, "Style") == "oil"
    assert field(oil, "Negative") == "people, blurry"
    assert "Saved." in await settings(world, "set", style="ink")
    ink = await world.result(await world.dream(world.alice, prompt="a fox", count=1))
    assert (ink.embeds[0]["description"], field(ink, "Style")) == ("an ink drawing of a fox", "ink")

    blocked = await world.dream(world.alice, prompt="a statue", style="risque", count=1)
    assert "Matched: “nude”" in await private(blocked)  # the filter saw the styled prompt

    listed = await private(await world.fake.slash(world.bob, world.dreams, "styles", "list"))
    assert "**oil**" in listed and "**ink**" in listed
    removed = await world.fake.slash(world.admin, world.dreams, "styles", "remove", name="ink")
    assert "Style `ink` removed" in await private(removed)
    gone = await world.dream(world.alice, prompt="a fox", count=1)
    assert "It is your `/settings` default" in await private(gone)
    actions = [entry.action for entry in await world.app.services.audit.entries(world.guild.id)]
    assert actions.count("style_added") == 2 and actions.count("style_removed") == 1  # ink and clean


async def test_relax_is_free_queued_at_a_low_weight_and_capped(world: World) -> None:
    await world.start()
    capped = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="relax_max_jobs",
                                    value=1)  # fmt: skip
    assert "`relax_max_jobs` is now 1 here." in await private(capped)
    too_heavy = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="relax_weight",
                                       value=2)  # fmt: skip
    assert "relax_weight: 2 is out of range; allowed range is 0.01 to 1" in await private(too_heavy)
    relaxed = await world.result(await world.dream(world.alice, prompt="a cat", mode="relax", count=4))
    assert field(relaxed, "Mode") == "relax (free)"
    quota = await private(await world.fake.slash(world.alice, world.dreams, "quota"))
    assert "**8** of 8 images" in quota and "0.1× your share" in quota and "1 relax job queued at once (0 now)" in quota

    await world.app.services.dreams.pause(world.admin.id)
    queued = await world.dream(world.alice, prompt="a cat", mode="relax", count=1)
    await queued.wait_message(has_text("Queued"))
    over = await world.dream(world.alice, prompt="a dog", mode="relax", count=1)
    assert "You already have 1 relax job in the queue" in await private(over)
    fast = await world.dream(world.alice, prompt="a dog", count=2)  # fast is charged, and not capped
    await fast.wait_message(has_text("Queued"))
    assert "**6** of 8 images" in await private(await world.fake.slash(world.alice, world.dreams, "quota"))
    await world.app.services.dreams.resume(world.admin.id)
    await world.result(queued)


async def test_bad_aspect_style_and_model_are_refused_naming_the_field(world: World) -> None:
    await world.start(engine={"min_size": 448})
    aspect = await world.dream(world.alice, prompt="a cat", aspect="16:9")
    assert "**aspect**: 16:9 cannot be made within the limits here" in await private(aspect)
    mixed = await world.dream(world.alice, prompt="a cat", aspect="1:1", width=512)
    assert "**aspect**: give either aspect or width and height, not both" in await private(mixed)
    style = await world.dream(world.alice, prompt="a cat", style="ink")
    assert "**style**: there is no style `ink` here" in await private(style)
    model = await world.dream(world.alice, prompt="a cat", model="photoreal")
    assert "**model**: there is no model 'photoreal' here; the models are: default" in await private(model)
    choices = await (await world.fake.autocomplete(world.alice, world.dreams, "dream", focused="model", prompt="x",
                                                   model="")).wait_choices()  # fmt: skip
    assert [choice["value"] for choice in choices] == ["default"]
    assert world.app.services.dreams.active_jobs(world.guild.id) == []
    assert "**style**: there is no style `ink`" in await settings(world, "set", style="ink")
