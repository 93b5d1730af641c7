"""Warnings that escalate: blocked prompts and actioned flags warn the member in that server; the third within
the window bans them for the configured time, which lifts itself; ``/mod warnings`` lists and ``/mod unwarn``
clears, in the moderator's own server only."""

from __future__ import annotations

from tests.e2e.conftest import Server, World, has_text
from tests.e2e.test_moderation import flag
from tests.e2e.test_tenancy import private

BLOCKED = "a nude elf"


async def test_the_third_blocked_prompt_bans_for_the_configured_time_then_dream_works_again(world: World) -> None:
    await world.start(moderation={"warnings": {"auto_ban_hours": 2}})
    first = await private(await world.dream(world.alice, prompt=BLOCKED))
    assert "Matched" in first and "This is warning 1 of 3 within 24 hours in this server" in first
    assert "warning 2 of 3" in await private(await world.dream(world.alice, prompt=BLOCKED))
    third = await private(await world.dream(world.alice, prompt=BLOCKED))
    assert "That is 3 warnings within 24 hours in this server: you are banned from generating images here for " \
           "2 hours. The ban lifts itself then." in third  # fmt: skip
    told = await world.fake.wait_message(has_text("was banned from generating"), channel=world.mods)
    assert told.content.startswith(f"⛔ <@{world.alice.id}> was banned from generating for 2 hours automatically: "
                                   "3 warnings within 24 hours (the last: blocked prompt (sexual))")  # fmt: skip
    refused = await private(await world.dream(world.alice, prompt="a cat"))
    assert "You are banned from generating images for another 2 hours" in refused
    assert "Reason: 3 warnings (the last: blocked prompt (sexual))" in refused
    await world.result(await world.dream(world.bob, prompt="a cat", count=1))  # only alice is banned

    world.clock.advance(2 * 3600 - 60)
    assert "for another 60 seconds" in await private(await world.dream(world.alice, prompt="a cat"))
    world.clock.advance(60)
    result = await world.result(await world.dream(world.alice, prompt="a cat", count=1))
    assert result.attachments
    fourth = await private(await world.dream(world.alice, prompt=BLOCKED))
    assert "warning 1 of 3" in fourth  # the warnings before the ban brought it: counting starts again


async def test_mod_warnings_lists_an_actioned_flag_and_a_blocked_prompt_and_unwarn_clears(world: World) -> None:
    app = await world.start(moderation={"flags": {"alert_score": 1, "hide_score": 5}})
    await private(await world.dream(world.alice, prompt=BLOCKED))
    result = await world.result(await world.dream(world.alice, prompt="a tower", count=1))
    await flag(world, world.bob, result)
    alert = await world.fake.wait_message(channel=world.mods)
    said = await (await world.fake.click(world.moderator, alert, label="Warn")).wait_message(lambda m: m.ephemeral)
    assert f"<@{world.alice.id}> now has 2 of 3 warnings within 24 hours." in said.content
    [dm] = world.fake.channel_messages(world.fake.dm_channel(world.alice))
    assert "this is a warning" in dm.content and "This is warning 2 of 3 within 24 hours" in dm.content

    listing = await world.fake.slash(world.moderator, world.dreams, "mod", "warnings", member=world.alice)
    shown = (await listing.wait_message(lambda m: m.ephemeral)).embeds[0]
    [by_flag, by_prompt] = shown["description"].split("\n")
    assert "**flagged image**: flagged image warned (review #1)" in by_flag
    assert "**blocked prompt**: blocked prompt (sexual)" in by_prompt
    assert shown["fields"][0]["value"] == "2 of 3 within 24 hours (a ban lasts 24 hours)"
    number = int(by_prompt.split("#")[1].split(" ")[0])

    unwarn = await world.fake.slash(world.moderator, world.dreams, "mod", "unwarn", warning=number, note="filter bug")
    assert f"Warning #{number} of <@{world.alice.id}> is cleared" in await private(unwarn)
    again = await world.fake.slash(world.moderator, world.dreams, "mod", "unwarn", warning=number)
    assert f"Warning #{number} was already cleared." in await private(again)
    listing = await world.fake.slash(world.moderator, world.dreams, "mod", "warnings", member=world.alice)
    shown = (await listing.wait_message(lambda m: m.ephemeral)).embeds[0]
    assert f"cleared by <@{world.moderator.id}>" in shown["description"].split("\n")[1]
    assert shown["fields"][0]["value"].startswith("1 of 3")
    actions = [entry.action for entry in await app.services.audit.entries(world.guild.id)]
    assert actions[:3] == ["unwarned", "warning", "warned"]
    audit = await private(await world.fake.slash(world.moderator, world.dreams, "mod", "audit"))
    assert f"**unwarned** by <@{world.moderator.id}> on <@{world.alice.id}>" in audit


async def test_another_servers_moderator_can_neither_see_nor_clear_the_warnings(world: World, other: Server) -> None:
    app = await world.start()
    await private(await world.dream(world.alice, prompt=BLOCKED))
    [warning] = (await app.services.warnings.record(world.guild.id, world.alice.id)).warnings

    listing = await world.fake.slash(other.moderator, other.dreams, "mod", "warnings", member=other.alice)
    shown = (await listing.wait_message(lambda m: m.ephemeral)).embeds[0]
    assert shown["description"] == "No warnings in this server." and shown["fields"][0]["value"].startswith("0 of 3")
    unwarn = await world.fake.slash(other.moderator, other.dreams, "mod", "unwarn", warning=warning.id)
    assert f"There is no warning #{warning.id} in this server." in await private(unwarn)
    [still] = (await app.services.warnings.record(world.guild.id, world.alice.id)).warnings
    assert still.cleared_at is None
    assert await app.services.audit.entries(other.guild.id) == []
    # Blocked prompts in the other server count there only.
    for _ in range(2):
        await private(await world.dream(other.alice, other.dreams, prompt=BLOCKED))
    assert "warning 2 of 3" in await private(await world.dream(world.alice, prompt=BLOCKED))


async def test_warning_settings_out_of_range_are_refused_with_the_range(world: World) -> None:
    await world.start()
    for key, value, text in (
        ("auto_ban_hours", 0, "`auto_ban_hours` must be more than 0 and at most 8760 hours; 0 is out of range."),
        ("auto_ban_hours", -5, "must be more than 0 and at most 8760 hours; -5 is out of range."),
        ("warning_window_hours", 0, "`warning_window_hours` must be more than 0 and at most 8760 hours; 0 is out"),
        ("warning_window_hours", -1, "must be more than 0 and at most 8760 hours; -1 is out of range."),
        ("warnings_to_ban", 0, "`warnings_to_ban` must be a whole number from 1 to 20; 0 is out of range."),
    ):
        ix = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key=key, value=value)
        assert text in await private(ix)
    missing = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="auto_ban_hours")
    assert "Give `value` for auto_ban_hours: more than 0 and at most 8760 hours." in await private(missing)
    assert await world.app.services.audit.entries(world.guild.id) == []
    fine = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="warnings_to_ban", value=1)
    assert "`warnings_to_ban` is now 1 here." in await private(fine)
    show = await private(await world.fake.slash(world.admin, world.dreams, "admin", "settings", "show"))
    assert "'auto_ban_hours', 'value': '24\\n*config default*'" in show
    banned = await private(await world.dream(world.alice, prompt=BLOCKED))
    assert "That is 1 warning within 24 hours in this server: you are banned from generating images here for 24 " \
           "hours." in banned  # fmt: skip
