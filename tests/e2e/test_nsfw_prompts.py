"""Age-restricted channels: a server may let filter categories through there (``nsfw_prompt_categories``), never
personal information or hate; ordinary channels, and servers that did not set it, refuse as before."""

from __future__ import annotations

from tests.e2e.conftest import Server, World, forged_button
from tests.e2e.test_refusals import refusal
from tests.fakediscord import FakeChannel, FakeMember

SEXUAL = "a nude figure study in charcoal"
LENIENT = {"warnings": {"warnings_to_ban": 20}}
"""Enough warnings before a ban for every refusal a test makes."""


async def set_categories(world: World, admin: FakeMember, channel: FakeChannel, categories: str) -> str:
    """``/admin settings set key:nsfw_prompt_categories``; the admin's private answer."""
    ix = await world.fake.slash(admin, channel, "admin", "settings", "set", key="nsfw_prompt_categories",
                                categories=categories)  # fmt: skip
    return (await ix.wait_message(lambda m: m.ephemeral)).content


async def test_a_server_lets_the_sexual_category_through_in_age_restricted_channels_only(world: World) -> None:
    after_dark = world.guild.add_text_channel("after-dark", nsfw=True)
    world.config["discord"]["dream_channel_ids"] = [world.dreams.id, after_dark.id]
    await world.start(moderation=LENIENT)

    # Not set (the config's default is none): refused even in the age-restricted channel.
    await refusal(await world.dream(world.alice, after_dark, prompt=SEXUAL), "Matched: “nude” (sexual)")
    assert "is now sexual here" in await set_categories(world, world.admin, world.dreams, "sexual")

    result = await world.result(await world.dream(world.alice, after_dark, prompt=SEXUAL, count=1))
    assert result.channel_id == after_dark.id
    await refusal(await world.dream(world.alice, prompt=SEXUAL), "Matched: “nude” (sexual)")
    # Hate and personal information stay refused there, in the prompt and in the negative prompt.
    await refusal(await world.dream(world.alice, after_dark, prompt="white power rally"), "(hate)")
    await refusal(await world.dream(world.alice, after_dark, prompt=f"{SEXUAL}, call me on 07700 900123"),
                  "(personal_info)")  # fmt: skip
    await refusal(await world.dream(world.alice, after_dark, prompt=SEXUAL, negative="white power"),
                  "Matched in your negative prompt: “white power” (hate)")  # fmt: skip

    # A re-roll is checked where it is asked for: allowed from the age-restricted channel, refused elsewhere.
    again = await world.result(await world.fake.click(world.bob, result, label="Re-roll"))
    assert again.embeds[0]["description"] == SEXUAL
    job_id = next(b["custom_id"] for b in result.buttons if b["label"] == "Re-roll").rsplit(":", 1)[1]
    ordinary = forged_button(world, world.dreams, f"dq:reroll:{job_id}")
    await refusal(await world.fake.click(world.bob, ordinary, f"dq:reroll:{job_id}"), "(sexual)")


async def test_hate_and_personal_information_cannot_be_allowed(world: World) -> None:
    await world.start()
    for name in ("hate", "pii", "personal_info"):
        answer = await set_categories(world, world.admin, world.dreams, f"sexual, {name}")
        assert f"`nsfw_prompt_categories` can never allow {name}" in answer
        assert "it takes sexual, violence, trademark." in answer
    answer = await set_categories(world, world.admin, world.dreams, "gore")
    assert "`nsfw_prompt_categories` takes filter categories of the config: sexual, violence, trademark; not gore" \
        in answer
    show = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "show")
    fields = str((await show.wait_message(lambda m: m.ephemeral and bool(m.embeds))).embeds[0]["fields"])
    assert "'name': 'nsfw_prompt_categories', 'value': 'none\\n*config default*'" in fields


async def test_another_servers_setting_does_not_reach_this_one(world: World, other: Server) -> None:
    after_dark = world.guild.add_text_channel("after-dark", nsfw=True)
    world.config["discord"]["dream_channel_ids"] = [world.dreams.id, after_dark.id]
    elsewhere = other.guild.add_text_channel("late-night", nsfw=True)
    await world.start()
    assert "is now sexual here" in await set_categories(world, other.admin, other.dreams, "sexual")

    await world.result(await world.dream(other.member, elsewhere, prompt=SEXUAL, count=1))
    await refusal(await world.dream(world.alice, after_dark, prompt=SEXUAL), "(sexual)")
    await refusal(await world.dream(other.member, other.dreams, prompt=SEXUAL), "(sexual)")
