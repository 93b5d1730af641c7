"""``/admin settings``: a server's own values over the config's, with their source, refused out of range."""

from __future__ import annotations

from tests.e2e.conftest import Server, World
from tests.e2e.test_moderation import flag
from tests.e2e.test_tenancy import private


async def test_a_server_sets_its_own_settings_which_survive_a_restart(world: World, other: Server) -> None:
    await world.start()
    show = await private(await world.fake.slash(world.admin, world.dreams, "admin", "settings", "show"))
    assert "'alert_score', 'value': '2\\n*config default*'" in show
    helpers = world.guild.add_role("Helpers")
    helper = world.guild.add_member("helper", roles=[helpers])
    set_role = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set",
                                      key="moderator_role_ids", role=helpers)  # fmt: skip
    assert f"<@&{helpers.id}>" in await private(set_role)
    set_score = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="hide_score", value=9)
    assert "`hide_score` is now 9 here." in await private(set_score)

    await world.restart()
    show = await private(await world.fake.slash(world.admin, world.dreams, "admin", "settings", "show"))
    assert "'hide_score', 'value': '9\\n*set by this server*'" in show
    world.guild.opened_commands.add("mod")
    review = await world.fake.slash(helper, world.dreams, "mod", "review")  # the server's own moderator role
    assert "No flagged images are waiting" in await private(review)
    other_show = await private(await world.fake.slash(other.admin, other.dreams, "admin", "settings", "show"))
    assert "'hide_score', 'value': '3\\n*config default*'" in other_show  # the other server keeps the defaults
    entries = await world.app.services.audit.entries(world.guild.id)
    assert [entry.action for entry in entries] == ["setting", "setting"]
    assert "hide_score: 3.0 → 9" in entries[0].detail
    assert await world.app.services.audit.entries(other.guild.id) == []


async def test_bad_settings_are_refused_with_the_allowed_range(world: World, other: Server) -> None:
    await world.start()
    foreign = other.guild.add_role("Elsewhere")
    wrong_role = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set",
                                        key="admin_role_ids", role=foreign, strict=False)  # fmt: skip
    assert "That role is not in this server" in await private(wrong_role)
    for value, text in ((0, "must be 0.5 to 100; 0 is out of range"), (101, "must be 0.5 to 100"),
                        (1, "hide_score (1) must not be below alert_score (2)")):  # fmt: skip
        ix = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="hide_score",
                                    value=value)  # fmt: skip
        assert text in await private(ix)
    missing = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key="alert_score")
    assert "Give `value` for alert_score: 0.5 to 100." in await private(missing)
    assert await world.app.services.audit.entries(world.guild.id) == []


async def test_list_settings_take_one_item_at_a_time(world: World, other: Server) -> None:
    await world.start()
    mods, helpers = world.moderator.roles[0], world.guild.add_role("Helpers")
    art = world.guild.add_text_channel("art")

    async def change(key: str, action: str, **given: object) -> str:
        ix = await world.fake.slash(world.admin, world.dreams, "admin", "settings", "set", key=key, action=action,
                                    strict=False, **given)  # fmt: skip
        return await private(ix)

    dreams, art_id = world.dreams.id, art.id
    assert f"`dream_channel_ids` is now <#{dreams}>, <#{art_id}> here." in await change("dream_channel_ids", "add",
                                                                                         channel=art)  # fmt: skip
    assert f"already has <#{art_id}> here." in await change("dream_channel_ids", "add", channel=art)
    assert f"is now <@&{mods.id}>, <@&{helpers.id}> here." in await change("moderator_role_ids", "add", role=helpers)
    assert f"is now <@&{helpers.id}> here." in await change("moderator_role_ids", "remove", role=mods)
    assert f"is now <#{art_id}> here." in await change("dream_channel_ids", "remove", channel=world.dreams)
    assert f"has no <#{dreams}> here; it has <#{art_id}>." in await change("dream_channel_ids", "remove",
                                                                             channel=world.dreams)  # fmt: skip
    assert "none: `/dream` works in every channel" in await change("dream_channel_ids", "remove", channel=art)
    assert "is now trademark, violence here." in await change("filter_off", "add", categories="trademark, violence")
    assert "`filter_off` is now violence here." in await change("filter_off", "remove", categories="trademark")
    assert "`hide_score` is not a list setting" in await change("hide_score", "add", value=5)
    foreign = other.guild.add_role("Elsewhere")
    assert "That role is not in this server" in await change("admin_role_ids", "remove", role=foreign)
    entries = await world.app.services.audit.entries(world.guild.id)
    assert len(entries) == 7 and entries[0].detail == "filter_off: ('trademark', 'violence') → ('violence',)"
    await world.result(await world.dream(world.alice, world.lounge, prompt="a cat", count=1))  # every channel now


async def test_each_server_alerts_its_own_moderators_channel(world: World, other: Server) -> None:
    await world.start()
    # The config's moderators' channel is the first server's: the other server's flags never go there.
    result = await world.result(await world.dream(other.member, other.dreams, prompt="a cave", count=1))
    for who in (other.alice, other.moderator):
        assert "Thank you" in await flag(world, who, result)
    assert world.fake.channel_messages(world.mods) == [] and world.fake.channel_messages(other.mods) == []

    channel = await world.fake.slash(other.admin, other.dreams, "admin", "settings", "set",
                                     key="moderators_channel_id", channel=other.mods)  # fmt: skip
    assert f"<#{other.mods.id}>" in await private(channel)
    result = await world.result(await world.dream(other.member, other.dreams, prompt="a hill", count=1))
    for who in (other.alice, other.moderator):
        await flag(world, who, result)
    alert = await world.fake.wait_message(channel=other.mods)
    assert alert.embeds[0]["description"] == "a hill" and world.fake.channel_messages(world.mods) == []


async def test_a_server_turns_filter_categories_off_for_itself_only(world: World, other: Server) -> None:
    await world.start()
    off = await world.fake.slash(other.admin, other.dreams, "admin", "settings", "set", key="filter_off",
                                 categories="trademark, violence")  # fmt: skip
    assert "`filter_off` is now trademark, violence here." in await private(off)
    unknown = await world.fake.slash(other.admin, other.dreams, "admin", "settings", "set", key="filter_off",
                                     categories="sexual, gossip")  # fmt: skip
    assert "not gossip" in await private(unknown)
    test_b = await world.fake.slash(other.admin, other.dreams, "admin", "filter", "test", prompt="pikachu")
    assert "✅ Allowed" in await private(test_b)
    test_a = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "test", prompt="pikachu")
    assert "category **trademark**" in await private(test_a)
    await private(await world.fake.slash(other.admin, other.dreams, "admin", "settings", "reset", key="filter_off"))
    test_b = await world.fake.slash(other.admin, other.dreams, "admin", "filter", "test", prompt="pikachu")
    assert "category **trademark**" in await private(test_b)
