"""Two servers, one bot: neither server's admins or moderators can reach the other's records or the shared GPU."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import discord

from tests.e2e.conftest import Server, World, forged_button, has_text
from tests.e2e.test_moderation import flag
from tests.fakediscord import FakeChannel, FakeInteraction, FakeMember
from tests.fakediscord.commands import definition_of


async def private(ix: FakeInteraction) -> str:
    message = await ix.wait_message(lambda m: m.ephemeral)
    return message.content + str(message.embeds)


def row_counts(db_path: Path) -> dict[str, int]:
    """Rows in every table of the database."""
    with sqlite3.connect(db_path) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


def lingering_commands(world: World, guild_id: int | None) -> None:
    """The first server's commands, as an earlier sync to ``guild_id`` (None: globally) would have left them."""
    commands = world.fake.commands
    commands.overwrite(guild_id, [definition_of(command) for command in commands.list(world.guild.id)])


async def forged_click(world: World, who: FakeMember, channel: FakeChannel, custom_id: str) -> FakeInteraction:
    return await world.fake.click(who, forged_button(world, channel, custom_id), custom_id)


async def test_another_servers_moderators_cannot_read_or_act_on_its_records(world: World, other: Server) -> None:
    app = await world.start()
    result = await world.result(await world.dream(world.alice, prompt="a beach", count=1))
    await flag(world, world.bob, result, note="first server only")
    await flag(world, world.carol, result)
    await world.fake.wait_message(channel=world.mods)
    blocked = await world.dream(world.alice, prompt="a nude elf")
    assert "Matched" in await private(blocked)
    [item] = (await app.services.flags.review_queue(world.guild.id)).items
    guild_b = other.guild.id

    review = await world.fake.slash(other.moderator, other.dreams, "mod", "review")
    assert "No flagged images are waiting" in await private(review)
    history = await world.fake.slash(other.moderator, other.dreams, "mod", "history", member=other.alice)
    shown = (await history.wait_message(lambda m: m.ephemeral)).embeds[0]["fields"]
    fields = {field["name"]: field["value"] for field in shown}
    assert fields["Recent blocked or noted prompts"] == "none" and fields["Recent flagged images"] == "none"
    assert fields["Recent jobs"] == "none" and fields["Flagged images"].startswith("0 open")
    alert = await world.fake.wait_message(channel=world.mods)
    dismiss = await world.fake.click(world.moderator, alert, label="Dismiss")
    assert "**dismissed**" in await private(dismiss)
    audit_a = await private(await world.fake.slash(world.moderator, world.dreams, "mod", "audit"))
    assert f"**dismissed** by <@{world.moderator.id}> on <@{world.alice.id}> (review #{item.id})" in audit_a
    audit_b = await private(await world.fake.slash(other.moderator, other.dreams, "mod", "audit"))
    assert "No actions recorded in this server yet." in audit_b
    stats = await private(await world.fake.slash(other.admin, other.dreams, "admin", "stats"))
    assert "'Open flags', 'value': '0 (0 hidden)'" in stats and "'Blocked prompts (24 h)', 'value': '0'" in stats

    for action in ("dismiss", "remove", "warn", "dismiss:q"):
        click = await forged_click(world, other.moderator, other.dreams, f"dq:review:{item.id}:{action}")
        assert f"There is no review item #{item.id}." in await private(click)
    reopen_a = await app.services.flags.reopen(world.guild.id, item.id, world.moderator.id)
    assert reopen_a.state == "open"  # still A's to review, and B's forged clicks changed nothing
    ban = await forged_click(world, other.moderator, other.dreams, f"dq:review:{item.id}:ban")
    duration = (await ban.wait_modal())["components"][0]["component"]["custom_id"]
    submitted = await world.fake.submit_modal(ban, {duration: ["1 day"]})
    assert f"There is no review item #{item.id}." in await private(submitted)
    for who in (other.admin, other.member):
        for custom_id in (f"dq:delete:{item.job_id}", f"dq:reroll:{item.job_id}", f"dq:image:{item.job_id}:0"):
            click = await forged_click(world, who, other.dreams, custom_id)
            assert "no such job in this server" in await private(click)
    opened = await forged_click(world, other.member, other.dreams, f"dq:flag:{item.job_id}")
    modal = await opened.wait_modal()
    reason = modal["components"][0]["component"]["custom_id"]
    assert "no such job in this server" in await private(await world.fake.submit_modal(opened, {reason: ["hate"]}))

    assert (await app.services.flags.item(world.guild.id, item.id)).flag_count == 2
    assert await app.services.audit.entries(guild_b) == [] and world.fake.channel_messages(other.mods) == []
    assert not world.fake.message(result).deleted


async def test_filter_rules_apply_only_in_the_server_that_made_them(world: World, other: Server) -> None:
    await world.start()
    add = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "add", category="brands", rule="acme*")
    assert "Added keywords rule" in await private(add)
    test_b = await world.fake.slash(other.admin, other.dreams, "admin", "filter", "test", prompt="an acme anvil")
    assert "✅ Allowed" in await private(test_b)
    remove = await world.fake.slash(
        other.admin, other.dreams, "admin", "filter", "remove", category="brands", rule="acme*"
    )
    assert "cannot be made" in await private(remove)
    zorp = await world.fake.slash(other.admin, other.dreams, "admin", "filter", "add", category="words", rule="zorp")
    assert "Added keywords rule" in await private(zorp)

    await world.restart()
    refused = await world.dream(world.alice, prompt="an acme anvil")
    assert "Matched: “acme”" in await private(refused)
    test_a = await world.fake.slash(world.admin, world.dreams, "admin", "filter", "test", prompt="zorp")
    assert "✅ Allowed" in await private(test_a)
    test_b = await world.fake.slash(other.admin, other.dreams, "admin", "filter", "test", prompt="a zorp")
    assert "🚫 Blocked" in await private(test_b)
    restarted = world.app.services
    assert [entry.guild_id for entry in await restarted.prompt_log.recent(world.guild.id)] == [world.guild.id]
    assert await restarted.prompt_log.recent(other.guild.id) == []


async def test_only_the_operator_pauses_the_gpu_or_changes_what_servers_share(world: World, other: Server) -> None:
    app = await world.start()
    for who in (other.admin, world.guild.owner):  # an admin of either server, not the operator
        for args, options in ((("pause",), {}), (("resume",), {}), (("reload",), {}), (("multiplier",), {"value": 2}),
                              (("weight",), {"value": 50})):
            ix = await world.fake.slash(who, other.dreams if who is other.admin else world.dreams, "admin", *args,
                                        **options)  # fmt: skip
            assert "Only the bot's operator" in await private(ix)
    assert not app.services.dreams.stats(world.guild.id).paused
    pause = await world.fake.slash(world.admin, world.dreams, "admin", "pause")
    assert "paused" in await private(pause)
    assert app.services.dreams.stats(world.guild.id).paused
    resume = await world.fake.slash(world.admin, world.dreams, "admin", "resume")
    assert "running again" in await private(resume)
    assert app.services.dreams.server_weight(other.guild.id) == 1
    weight = await world.fake.slash(world.admin, world.dreams, "admin", "weight", value=3, server=str(other.guild.id))
    assert f"Server {other.guild.id} now has a GPU share of 3" in await private(weight)
    assert app.services.dreams.server_weight(other.guild.id) == 3
    for value in (0, -1):
        refused = await world.fake.slash(world.admin, world.dreams, "admin", "weight", value=value)
        assert "0.01 to 100" in await private(refused)


async def quota_tier(world: World, who: FakeMember, channel: FakeChannel) -> str:
    """The tier ``/quota`` tells the member they have in the channel's server."""
    said = await private(await world.fake.slash(who, channel, "quota"))
    return said.split("Your quota: ", 1)[1].split(" tier", 1)[0]


async def test_roles_named_like_another_servers_give_nothing(world: World, other: Server) -> None:
    await world.start()
    other.guild.opened_commands |= {"admin", "mod"}  # B's admins let everyone see the commands: checked at use
    admin = await world.fake.slash(other.namesake, other.dreams, "admin", "stats")
    assert "Only this server's bot admins" in await private(admin)
    mod = await world.fake.slash(other.namesake, other.dreams, "mod", "review")
    assert "Only this server's moderators" in await private(mod)
    # A's VIP role gives the vip tier by its id; B's role named VIP gives nothing, on /quota and at admission.
    assert await quota_tier(world, world.carol, world.dreams) == "vip"
    assert await quota_tier(world, other.namesake, other.dreams) == "default"
    refused = await world.dream(other.namesake, other.dreams, prompt="a fox", count=9)
    assert "Your tier (default) allows images per request up to 4; this request asks for 9." in await private(refused)
    await world.result(await world.dream(world.carol, prompt="a fox", count=9))


async def test_a_servers_admins_give_a_tier_to_their_own_role_there_only(world: World, other: Server) -> None:
    await world.start()
    patrons = other.guild.add_role("Patrons")
    other.alice.set_roles([patrons])  # alice is in both servers; the role is B's
    vip_of_a = next(role for role in world.guild.roles if role.name == "VIP")
    foreign = await world.fake.slash(other.admin, other.dreams, "admin", "tier", "role", tier="vip", role=vip_of_a,
                                     strict=False)  # fmt: skip
    assert "That role is not in this server" in await private(foreign)
    unknown = await world.fake.slash(other.admin, other.dreams, "admin", "tier", "role", tier="gold", role=patrons)
    assert "There is no tier 'gold'; the tiers are default, vip." in await private(unknown)
    assert await quota_tier(world, other.alice, other.dreams) == "default"

    mapped = await world.fake.slash(other.admin, other.dreams, "admin", "tier", "role", tier="vip", role=patrons)
    assert f"<@&{patrons.id}> now gives tier **vip** here." in await private(mapped)
    assert await quota_tier(world, other.alice, other.dreams) == "vip"
    assert await quota_tier(world, world.alice, world.dreams) == "default"
    await world.result(await world.dream(other.alice, other.dreams, prompt="a fox", count=9))
    refused = await world.dream(world.alice, prompt="a fox", count=9)
    assert "Your tier (default) allows images per request up to 4" in await private(refused)

    await world.restart()
    assert await quota_tier(world, other.alice, other.dreams) == "vip"
    show = await private(await world.fake.slash(other.admin, other.dreams, "admin", "settings", "show"))
    assert f"vip: <@&{patrons.id}>" in show
    removed = await world.fake.slash(other.admin, other.dreams, "admin", "tier", "role", tier="vip", role=patrons,
                                     action="remove")  # fmt: skip
    assert f"<@&{patrons.id}> no longer gives tier **vip** here." in await private(removed)
    assert await quota_tier(world, other.alice, other.dreams) == "default"
    again = await world.fake.slash(other.admin, other.dreams, "admin", "tier", "role", tier="vip", role=patrons,
                                   action="remove")  # fmt: skip
    assert f"<@&{patrons.id}> does not give tier **vip** here." in await private(again)
    entries = await world.app.services.audit.entries(other.guild.id)
    assert [entry.detail for entry in entries] == [
        f"tier_roles.vip: <@&{patrons.id}> → none", f"tier_roles.vip: none → <@&{patrons.id}>"
    ]
    assert await world.app.services.audit.entries(world.guild.id) == []


async def test_a_server_not_served_is_refused_everything_and_nothing_is_stored(world: World) -> None:
    uninvited = world.fake.add_guild("Uninvited")
    general = uninvited.add_text_channel("general")
    boss = uninvited.add_member("boss", roles=[uninvited.add_role("Boss", discord.Permissions(administrator=True))])
    await world.start(discord={"operator_contact": "ops@example.org"})
    lingering_commands(world, uninvited.id)
    await world.fake.wait_until(lambda: row_counts(world.db_path)["guilds"] == 1)  # the served server, at ready
    before = row_counts(world.db_path)

    tries = [
        await world.fake.slash(boss, general, "dream", prompt="a cat"),
        await world.fake.slash(boss, general, "dream", prompt="a nude elf"),
        await world.fake.slash(boss, general, "admin", "stats"),
        await world.fake.slash(boss, general, "admin", "filter", "add", category="x", rule="y"),
        await world.fake.slash(boss, general, "mod", "review"),
        await world.fake.slash(boss, general, "queue"),
        await world.fake.slash(boss, general, "quota"),
        await forged_click(world, boss, general, "dq:flag:1"),
        await forged_click(world, boss, general, "dq:review:1:dismiss"),
        await world.fake.context_menu(boss, forged_button(world, general, "dq:cancel:1"), "Flag image"),
    ]
    for ix in tries:
        assert "does not serve this server" in (said := await private(ix)) and "ops@example.org" in said
    assert row_counts(world.db_path) == before


async def test_direct_messages_are_refused(world: World) -> None:
    await world.start()
    lingering_commands(world, None)
    dm = world.fake.dm_channel(world.alice)
    dream = await world.fake.slash(world.alice.user, dm, "dream", prompt="a cat")
    assert "works only in servers" in await private(dream)
    quota = await world.fake.slash(world.alice.user, dm, "quota")
    assert "use `/quota` in a server" in await private(quota)


async def test_without_owner_ids_the_operator_is_the_applications_owner(world: World) -> None:
    owner = world.guild.join(world.fake.app_owner, roles=world.admin.roles)  # an admin here too, to see /admin
    await world.start(discord={"owner_ids": []})
    refused = await world.fake.slash(world.admin, world.dreams, "admin", "pause")
    assert "Only the bot's operator" in await private(refused)
    paused = await world.fake.slash(owner, world.dreams, "admin", "pause")
    assert "paused" in await private(paused)


async def test_a_flooding_server_fills_only_its_own_share_of_the_queue(world: World, other: Server) -> None:
    await world.start(scheduler={"max_queued_jobs": 3, "max_queued_jobs_per_server": 2})
    await private(await world.fake.slash(world.admin, world.dreams, "admin", "pause"))  # jobs stay queued
    for who in (world.alice, world.bob):
        await (await world.dream(who, prompt="a flood", count=1)).wait_message(has_text("Queued"))
    full = await world.dream(world.carol, prompt="one more", count=1)
    assert "This server's share of the queue is full: 2 of its jobs are waiting or running" in await private(full)
    small = await world.dream(other.member, other.dreams, prompt="a small one", count=1)
    await small.wait_message(has_text("Queued"))
    ceiling = await world.dream(other.alice, other.dreams, prompt="and another", count=1)
    assert "The bot's queue is full: 3 jobs are waiting or running across all servers" in await private(ceiling)
