"""Every refusal is private and says what happened and what to do; nothing is queued or charged."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World, has_text


async def refusal(ix, text: str) -> str:
    """The one private message the member got; it contains ``text``."""
    message = await ix.wait_message(lambda m: m.ephemeral, include_channel=False)
    assert text in message.content, message.content
    visible = [e for e in ix.events if e.message is not None and not e.message.ephemeral and not e.message.deleted]
    assert all(e.message.loading for e in visible if e.kind != "delete"), "a refusal left a public message"
    return message.content


async def test_wrong_channel_is_refused_at_once_naming_the_right_one(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, world.lounge, prompt="a cat")
    response = await ix.wait_response()
    assert response.callback_type == 4 and response.ephemeral
    assert f"<#{world.dreams.id}>" in response.content


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"width": 100}, "**width**: must be a multiple of 8"),
        ({"count": 20}, "**count**: must be between 1 and 9"),
        ({"steps": 0}, "**steps**: must be between 1 and 150"),
        ({"guidance": 99.0}, "**guidance**: must be between 0 and 30"),
        ({"sampler": "heun"}, "**sampler**: must be one of dpmpp_2m"),
        ({"prompt": "   "}, "**prompt**: must not be empty"),
    ],
)
async def test_options_outside_their_range_are_refused_with_the_range(world: World, options: dict, text: str) -> None:
    await world.start()
    # strict=False sends what Discord's own client would have stopped: a modified client.
    ix = await world.fake.slash(world.alice, world.dreams, "dream", **{"prompt": "a cat", **options}, strict=False)
    await refusal(ix, text)


async def test_tier_limit_refusal_after_defer_replaces_the_public_placeholder(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="a cat", count=6)
    assert (await ix.wait_response()).deferred
    await refusal(ix, "Your tier (default) allows images per request up to 4; this request asks for 6.")
    assert any(e.kind == "delete" for e in ix.events)


async def test_quota_refusal_says_when_to_come_back(world: World) -> None:
    await world.start()
    for _ in range(2):  # the default tier's burst is 8 images
        ix = await world.dream(world.alice, prompt="a cat", count=4)
        await world.result(ix)
    ix = await world.dream(world.alice, prompt="a cat", count=1)
    content = await refusal(ix, "You can make this request again in")
    assert "minutes" in content or "seconds" in content


async def test_blocked_prompt_names_the_rule_and_match_and_is_logged(world: World) -> None:
    app = await world.start()
    ix = await world.dream(world.alice, prompt="a N.U.D.E portrait")
    await refusal(ix, "Sexual or nude imagery isn't allowed on this server.")
    await refusal(ix, "Matched: “N.U.D.E”")
    [logged] = await app.services.prompt_log.recent(world.guild.id, member_id=world.alice.id)
    assert logged.category == "sexual" and logged.action == "block"


async def test_personal_information_is_refused(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="a poster saying call me at (415) 555-0132")
    await refusal(ix, "personal information")


async def test_negative_prompt_with_a_phone_number_is_refused_naming_the_negative(world: World) -> None:
    app = await world.start()
    ix = await world.dream(world.alice, prompt="a lighthouse", negative="blurry, call me on 07700 900123")
    content = await refusal(ix, "Matched in your negative prompt: “07700 900123” (personal_info)")
    assert "Rephrase your negative prompt" in content
    [logged] = await app.services.prompt_log.recent(world.guild.id, member_id=world.alice.id)
    assert (logged.prompt, logged.category) == ("blurry, call me on 07700 900123", "personal_info")


async def test_negative_prompt_may_name_what_to_keep_out_but_not_hate(world: World) -> None:
    await world.start()
    result = await world.result(await world.dream(world.alice, prompt="a lighthouse", negative="nude, gore", count=1))
    assert has_text("nude, gore")(result)  # checked, and shown as it was allowed
    ix = await world.dream(world.alice, prompt="a lighthouse", negative="white power")
    await refusal(ix, "Matched in your negative prompt: “white power” (hate)")


async def test_over_long_prompt_is_refused_by_default(world: World) -> None:
    await world.start()
    ix = await world.dream(world.alice, prompt="cat " * 80)
    await refusal(ix, "at least 80 tokens")


async def test_over_long_prompt_is_cut_with_a_warning_when_configured(world: World) -> None:
    await world.start(discord={"long_prompt": "truncate"})
    ix = await world.dream(world.alice, prompt="cat " * 80)
    result = await world.result(ix)
    assert has_text("Your prompt was cut to its first 75 tokens (it had at least 80).")(result)
    assert result.embeds[0]["description"].count("cat") == 75
