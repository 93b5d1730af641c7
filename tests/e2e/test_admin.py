"""``/admin``: changes apply to the next request, survive restarts, and bad values are refused with the range."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, has_text
from tests.fakediscord import CommandUnavailable


async def private(ix) -> str:
    message = await ix.wait_message(lambda m: m.ephemeral)
    return message.content + str(message.embeds)


async def test_tier_change_applies_to_the_next_dream_and_survives_a_restart(world: World) -> None:
    await world.start()
    refused = await world.dream(world.alice, prompt="six cats", count=6)
    assert "allows images per request up to 4" in await private(refused)

    change = await world.fake.slash(
        world.admin, world.dreams, "admin", "tier", "set", tier="default", limit="max_images", value=6.0
    )
    assert "max_images is now 6" in await private(change)
    await world.result(await world.dream(world.alice, prompt="six cats", count=6))

    await world.restart()
    show = await world.fake.slash(world.admin, world.dreams, "admin", "tier", "show", tier="default")
    assert "'name': 'max_images', 'value': '6'" in await private(show)

    override = await world.fake.slash(
        world.admin, world.dreams, "admin", "override", "set", member=world.alice, limit="max_images", value=2.0
    )
    assert "max_images is now 2 (overrides the tier)" in await private(override)
    show = await world.fake.slash(world.admin, world.dreams, "admin", "override", "show", member=world.alice)
    assert "'name': 'max_images', 'value': '2'" in await private(show)
    refused = await world.dream(world.alice, prompt="three cats", count=3)
    assert "allows images per request up to 2" in await private(refused)


async def test_bad_admin_values_are_refused_with_the_allowed_range(world: World) -> None:
    await world.start()
    too_big = await world.fake.slash(
        world.admin, world.dreams, "admin", "tier", "set", tier="default", limit="max_images", value=50.0
    )
    assert "max_images: 50 is out of range; allowed range is 1 to 9" in await private(too_big)
    no_tier = await world.fake.slash(world.admin, world.dreams, "admin", "tier", "show", tier="gold")
    assert "There is no tier 'gold'; the tiers are default, vip." in await private(no_tier)
    tap = await world.fake.slash(world.admin, world.dreams, "admin", "multiplier", value=-1.0)
    assert "allowed range is 0.01 to 100" in await private(tap)


async def test_admin_commands_are_for_admins(world: World) -> None:
    await world.start()
    with pytest.raises(CommandUnavailable):
        await world.fake.slash(world.moderator, world.dreams, "admin", "stats")
    world.guild.opened_commands.add("admin")  # the server's admins let everyone see /admin: checked at use
    ix = await world.fake.slash(world.moderator, world.dreams, "admin", "stats")
    assert "Only this server's bot admins" in await private(ix)
    world.guild.owner.roles = []  # Administrator, without the config's admin role, is a server admin
    ix = await world.fake.slash(world.guild.owner, world.dreams, "admin", "stats")
    assert "dreamqueue stats" in await private(ix)


async def test_filter_rules_added_live_apply_at_once_and_survive_a_restart(world: World) -> None:
    await world.start()
    add = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "add", category="brands", rule="acme*")
    assert "Added keywords rule `acme*` to **brands**" in await private(add)
    test = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "test", prompt="an ACMEcorp anvil")
    verdict = await private(test)
    assert "🚫 Blocked" in verdict and "category **brands**" in verdict and "an **__ACME__**corp anvil" in verdict

    await world.restart()
    refused = await world.dream(world.alice, prompt="an acme anvil")
    assert "Matched: “acme”" in await private(refused)
    remove = await world.fake.slash(
        world.admin, world.dreams, "admin", "filter", "remove", category="brands", rule="acme*"
    )
    assert "Removed" in await private(remove)
    await world.result(await world.dream(world.alice, prompt="an acme anvil", count=1))


async def test_filter_test_shows_the_negative_prompts_verdict_too(world: World) -> None:
    await world.start()
    test = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "test", prompt="a nude lighthouse",
                                  negative="nude, blurry, call me on 07700 900123")  # fmt: skip
    prompt, quoted, negative, quoted_negative = (await test.wait_message(lambda m: m.ephemeral)).content.split("\n")
    assert prompt.startswith("**Prompt**: 🚫 Blocked: category **sexual**, keyword rule `nude`, characters 2-6")
    assert quoted == "> a **__nude__** lighthouse"
    # A negative prompt names what to keep out: "nude" passes there, personal information never does.
    assert negative.startswith("**Negative prompt** (checked for personal information, hate and `negative_categories`)"
                               ": 🚫 Blocked: category **personal_info**, phone rule")  # fmt: skip
    assert quoted_negative == "> nude, blurry, call me on **__07700 900123__**"
    clean = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "test", prompt="a lighthouse",
                                   negative="nude, blurry")  # fmt: skip
    assert (await clean.wait_message(lambda m: m.ephemeral)).content.split("\n") == [
        "**Prompt**: ✅ Allowed: no rule matches.",
        ("**Negative prompt** (checked for personal information, hate and `negative_categories`): ✅ Allowed: no rule "
         "matches."),
    ]

    bad = await world.fake.slash(
        world.admin, world.dreams, "admin", "filter", "add", category="brands", rule="(?=x)x", kind="regex"
    )
    assert "cannot be made" in (text := await private(bad)) and "backtrack" in text


async def test_pause_resume_stats_and_reload(world: World) -> None:
    await world.start()
    pause = await world.fake.slash(world.admin, world.dreams, "admin", "pause")
    assert "paused" in await private(pause)
    waiting = await world.dream(world.alice, prompt="patience", count=1)
    await waiting.wait_message(has_text("Queued"))
    stats = await world.fake.slash(world.admin, world.dreams, "admin", "stats")
    shown = await private(stats)
    assert "1 jobs (1 images), 0 running · ⏸️ paused" in shown
    resume = await world.fake.slash(world.admin, world.dreams, "admin", "resume")
    assert "running again" in await private(resume)
    await world.result(waiting)


async def test_reload_applies_discord_and_filter_settings_at_once_and_names_the_rest(world: World) -> None:
    await world.start()
    lounge = await world.dream(world.alice, world.lounge, prompt="a quiet lounge")
    assert "`/dream` is not used in this channel" in await private(lounge)
    world.write_config(
        discord={"dream_channel_ids": [world.dreams.id, world.lounge.id]},
        engine={"max_steps": 60},
        moderation={"filter": {"categories": {"fruit": {"keywords": ["durian"], "message": "No durians here."}}}},
    )
    reload = await world.fake.slash(world.admin, world.dreams, "admin", "reload")
    said = await private(reload)
    assert "**Applied now:** `discord.dream_channel_ids`, `moderation.filter.categories.fruit.action`" in said
    assert "**Changed, applied at the next restart:** `engine.max_steps`" in said
    await world.result(await world.dream(world.alice, world.lounge, prompt="a quiet lounge"))
    assert "No durians here." in await private(await world.dream(world.alice, prompt="a durian"))

    world.config_path.write_text("engine:\n  max_steps: 0\n", "utf-8")
    broken = await world.fake.slash(world.admin, world.dreams, "admin", "reload")
    said = await private(broken)
    assert "nothing was reloaded" in said and "engine.max_steps: Input should be greater than 0" in said
    await world.result(await world.dream(world.alice, world.lounge, prompt="still open"))  # the old settings stand
