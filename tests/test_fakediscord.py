"""The Discord fake against the real discord.py client, driven by a small throwaway bot."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import re
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakediscord import (
    CommandUnavailable,
    DiscordError,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    InvalidInteraction,
)
from tests.fakediscord.limits import check_commands
from tests.fakediscord.plugin import fake_discord  # noqa: F401  (the fixture)

SAMPLERS = ["euler", "euler_a", "dpm++", "ddim"]
NO_PINGS = discord.AllowedMentions.none()


def png_file(count: int, name: str = "grid.png") -> discord.File:
    buffer = io.BytesIO()
    Image.new("RGB", (16 * count, 16), "purple").save(buffer, "PNG")
    buffer.seek(0)
    return discord.File(buffer, name)


class Reroll(discord.ui.DynamicItem[discord.ui.Button], template=r"reroll:(?P<n>\d+)"):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label="Re-roll", custom_id=f"reroll:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> Reroll:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None).add_item(Reroll(self.n + 1))
        await interaction.response.edit_message(content=f"re-roll {self.n + 1}", attachments=[png_file(1)], view=view)


class Hello(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Hello", custom_id="persist:hello")
    async def hello(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message(f"hello {interaction.user.name}", ephemeral=True)

    @discord.ui.select(cls=discord.ui.UserSelect, custom_id="persist:thank", max_values=2)
    async def thank(self, interaction: discord.Interaction, select: discord.ui.UserSelect) -> None:
        await interaction.response.send_message(f"thanks to {sorted(u.name for u in select.values)}", ephemeral=True)


class FlagModal(discord.ui.Modal, title="Flag image"):
    reason = discord.ui.Label(
        text="Reason",
        component=discord.ui.Select(
            custom_id="reason", options=[discord.SelectOption(label=v, value=v) for v in ("spam", "nsfw")]
        ),
    )
    note = discord.ui.TextInput(label="Note", custom_id="note", required=False, style=discord.TextStyle.paragraph)

    def __init__(self, message_id: int, mod_channel_id: int) -> None:
        super().__init__()
        self.message_id, self.mod_channel_id = message_id, mod_channel_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Thanks, flagged.", ephemeral=True)
        channel = interaction.client.get_channel(self.mod_channel_id)
        reason = self.reason.component.values[0]
        await channel.send(f"flag on {self.message_id}: {reason} / {self.note.value}", allowed_mentions=NO_PINGS)


class DemoBot(commands.Bot):
    """Everything a test needs: a group, a context menu, defer + followup, ephemeral replies,
    buttons that survive restarts, a modal, and a late-result fallback to the channel."""

    def __init__(self, guild_id: int, mod_channel_id: int) -> None:
        intents = discord.Intents.default()
        intents.members = True  # the fake grants privileged intents; members fill the cache
        super().__init__(command_prefix=commands.when_mentioned, intents=intents)
        self.guild_ref = discord.Object(guild_id)
        self.mod_channel_id = mod_channel_id
        self.release = asyncio.Event()  # lets a test choose when /late delivers

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Reroll)
        self.add_view(Hello())
        tree, guild = self.tree, self.guild_ref

        @tree.command(guild=guild, description="Dream an image")
        async def dream(
            interaction: discord.Interaction,
            prompt: str,
            count: app_commands.Range[int, 1, 4] = 1,
            sampler: str = "euler",
        ) -> None:
            await interaction.response.defer()
            embed = discord.Embed(title=prompt).set_image(url="attachment://grid.png")
            view = discord.ui.View(timeout=None).add_item(Reroll(0))
            await interaction.followup.send(
                f"**{prompt}**", file=png_file(count), embed=embed, view=view, allowed_mentions=NO_PINGS
            )
            tip = await interaction.followup.send("tip: re-rolls cost 1", ephemeral=True, wait=True)
            await tip.edit(content="tip: re-rolls are free today")
            await tip.delete()

        @dream.autocomplete("sampler")
        async def sampler_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=s, value=s) for s in SAMPLERS if s.startswith(current)]

        @tree.command(guild=guild, description="Ephemeral pong")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @tree.command(guild=guild, description="Reply, read the reply back, delete it")
        async def vanish(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("now you see me")
            await (await interaction.original_response()).delete()

        @tree.command(guild=guild, description="Measure an uploaded image")
        async def measure(interaction: discord.Interaction, image: discord.Attachment) -> None:
            with Image.open(io.BytesIO(await image.read())) as decoded:
                await interaction.response.send_message(f"{image.filename}: {decoded.size}", ephemeral=True)

        @tree.command(guild=guild, description="Post a message with a persistent button")
        async def post(interaction: discord.Interaction, text: str) -> None:
            await interaction.channel.send(text, view=Hello(), allowed_mentions=NO_PINGS)
            await interaction.response.send_message("posted", ephemeral=True)

        @tree.command(guild=guild, description="Deliver when released, late results to the channel")
        async def late(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await self.release.wait()
            mention_only_author = discord.AllowedMentions(users=[interaction.user], everyone=False, roles=False)
            if discord.utils.utcnow() - interaction.created_at < datetime.timedelta(minutes=14):
                try:
                    await interaction.edit_original_response(content="done", attachments=[png_file(1)])
                    return
                except discord.HTTPException as exc:
                    if exc.status != 401:
                        raise
            await interaction.channel.send(
                f"{interaction.user.mention} done (late)", file=png_file(1), allowed_mentions=mention_only_author
            )

        mod = app_commands.Group(
            name="mod",
            description="Moderator tools",
            default_permissions=discord.Permissions(manage_messages=True),
            guild_only=True,
        )

        @mod.command(description="Review flags")
        @app_commands.checks.has_permissions(manage_messages=True)
        async def review(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("nothing to review", ephemeral=True)

        @mod.command(description="Ban a member")
        async def ban(
            interaction: discord.Interaction, member: discord.Member, days: app_commands.Range[int, 1, 30] = 1
        ) -> None:
            await interaction.response.send_message(f"banned {member.display_name} for {days}d", ephemeral=True)

        tree.add_command(mod, guild=guild)

        @tree.context_menu(name="Flag image", guild=guild)
        async def flag(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.send_modal(FlagModal(message.id, self.mod_channel_id))

        await tree.sync(guild=guild)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    chan: FakeChannel
    mod_chan: FakeChannel
    alice: FakeMember
    bob: FakeMember
    bot: DemoBot


@pytest.fixture
async def world(fake_discord: FakeDiscord) -> World:  # noqa: F811
    fake = fake_discord
    guild = fake.add_guild("Dream Club")
    chan = guild.add_text_channel("dreams")
    mod_chan = guild.add_text_channel("mod-log")
    mods = guild.add_role("Moderators", discord.Permissions(manage_messages=True))
    alice = guild.add_member("alice")
    bob = guild.add_member("bob", roles=[mods])
    bot = DemoBot(guild.id, mod_chan.id)
    await fake.start_bot(bot)
    return World(fake, guild, chan, mod_chan, alice, bob, bot)


async def test_bot_connects_sees_the_guild_and_syncs_its_tree(world: World) -> None:
    fake, bot = world.fake, world.bot
    assert bot.user.id == fake.bot_user.id and bot.application_id == fake.application_id
    guild = bot.get_guild(world.guild.id)
    assert {c.name for c in guild.text_channels} == {"dreams", "mod-log"}
    assert [r.name for r in guild.get_member(world.bob.id).roles] == ["@everyone", "Moderators"]
    assert fake.gateway.heartbeats >= 1

    synced = {c["name"]: c for c in fake.synced_commands(world.guild)}
    assert set(synced) == {"dream", "ping", "vanish", "measure", "post", "late", "mod", "Flag image"}
    assert [o["name"] for o in synced["mod"]["options"]] == ["review", "ban"]
    assert synced["mod"]["default_member_permissions"] == str(discord.Permissions(manage_messages=True).value)
    assert synced["Flag image"]["type"] == 3
    assert {"min_value": 1, "max_value": 4}.items() <= synced["dream"]["options"][1].items()

    await bot.tree.sync(guild=world.guild)  # the same definitions again: same ids and versions
    assert fake.synced_commands(world.guild) == list(synced.values())
    assert len(fake.commands.syncs) == 2


async def test_defer_then_followup_with_png_replaces_the_thinking_message(world: World) -> None:
    fake = world.fake
    ix = await fake.slash(world.alice, world.chan, "dream", prompt="a cat @everyone <@1>", count=2)
    response = await ix.wait_response()
    assert response.callback_type == 5 and not response.ephemeral and response.elapsed >= 0

    grid = await ix.wait_message(lambda m: bool(m.attachments))
    assert grid.id == response.message.id  # the first followup took the deferred reply's place
    assert grid.content == "**a cat @everyone <@1>**" and not grid.mentions and not grid.ephemeral
    assert grid.attachments[0].image().size == (32, 16)
    assert grid.embed["image"]["url"] == grid.attachments[0].url
    assert grid.custom_ids == ["reroll:0"]

    tip = await ix.wait_event(lambda e: e.kind == "delete")
    assert [e.kind for e in ix.events] == ["response", "followup", "followup", "edit", "delete"]
    assert tip.message.ephemeral and tip.message.content == "tip: re-rolls are free today"
    assert [m.id for m in fake.channel_messages(world.chan)] == [grid.id]


async def test_ephemeral_reply_is_not_in_the_channel(world: World) -> None:
    ix = await world.fake.slash(world.alice, world.chan, "ping")
    response = await ix.wait_response()
    assert (response.callback_type, response.content, response.ephemeral) == (4, "pong", True)
    assert world.fake.channel_messages(world.chan) == []


async def test_original_response_can_be_read_back_and_deleted(world: World) -> None:
    fake = world.fake
    ix = await fake.slash(world.alice, world.chan, "vanish")
    deleted = await ix.wait_event(lambda e: e.kind == "delete")
    assert [e.kind for e in ix.events] == ["response", "delete"]
    assert deleted.message.deleted and fake.message(deleted.message).content == "now you see me"
    assert [r.method for r in fake.requests if "/messages/@original" in r.path] == ["GET", "DELETE"]
    assert fake.channel_messages(world.chan) == []


async def test_discords_client_rules_and_command_permissions(world: World) -> None:
    fake = world.fake
    with pytest.raises(InvalidInteraction, match="between 1 and 4"):
        await fake.slash(world.alice, world.chan, "dream", prompt="x", count=9)
    with pytest.raises(InvalidInteraction, match="needs options"):
        await fake.slash(world.alice, world.chan, "dream")
    with pytest.raises(CommandUnavailable):
        await fake.slash(world.alice, world.chan, "mod", "review")

    ix = await fake.slash(world.bob, world.chan, "mod", "ban", member=world.alice, days=3)
    assert (await ix.wait_response()).content == "banned alice for 3d"


async def test_permissions_follow_roles_overwrites_and_ownership(world: World) -> None:
    fake, guild = world.fake, world.guild
    owner = guild.members[guild.owner_id]
    assert (await (await fake.slash(owner, world.chan, "mod", "review")).wait_response()).content == "nothing to review"
    mods = next(role for role in guild.roles if role.name == "Moderators")
    world.mod_chan.set_overwrite(mods, deny=discord.Permissions(manage_messages=True))
    with pytest.raises(CommandUnavailable):
        await fake.slash(world.bob, world.mod_chan, "mod", "review")
    assert (await (await fake.slash(world.bob, world.chan, "mod", "review")).wait_response()).ephemeral


async def test_attachment_option_is_downloadable_by_the_bot(world: World) -> None:
    buffer = io.BytesIO()
    Image.new("L", (3, 5)).save(buffer, "PNG")
    ix = await world.fake.slash(world.alice, world.chan, "measure", image=("in.png", buffer.getvalue()))
    assert (await ix.wait_response()).content == "in.png: (3, 5)"


async def test_autocomplete(world: World) -> None:
    ix = await world.fake.autocomplete(world.alice, world.chan, "dream", focused="sampler", prompt="x", sampler="eul")
    assert [c["value"] for c in await ix.wait_choices()] == ["euler", "euler_a"]


async def test_dynamic_button_edits_its_message_with_a_new_upload(world: World) -> None:
    fake = world.fake
    grid = await (await fake.slash(world.alice, world.chan, "dream", prompt="cat")).wait_message(
        lambda m: bool(m.attachments)
    )
    click = await fake.click(world.bob, grid, "reroll:0")
    response = await click.wait_response()
    assert response.callback_type == 7 and response.message.id == grid.id
    assert len(response.files) == 1 and response.files[0].image().size == (16, 16)
    now = fake.message(grid)
    assert now.content == "re-roll 1" and now.custom_ids == ["reroll:1"]
    assert [a.id for a in now.attachments] == [response.files[0].id]


async def test_context_menu_opens_a_modal_whose_submit_reaches_the_mod_channel(world: World) -> None:
    fake = world.fake
    grid = await (await fake.slash(world.alice, world.chan, "dream", prompt="cat")).wait_message(
        lambda m: bool(m.attachments)
    )
    opened = await fake.context_menu(world.bob, grid, "Flag image")
    modal = await opened.wait_modal()
    assert modal["title"] == "Flag image"
    with pytest.raises(InvalidInteraction, match="takes 1 to 1 values"):
        await fake.submit_modal(opened, {"note": "no reason given"})
    with pytest.raises(InvalidInteraction, match="offers"):
        await fake.submit_modal(opened, {"reason": ["boring"]})

    submitted = await fake.submit_modal(opened, {"reason": ["spam"], "note": "@everyone look"})
    thanks = await submitted.wait_response()
    assert thanks.ephemeral and thanks.content == "Thanks, flagged."
    alert = await fake.wait_message(channel=world.mod_chan)
    assert alert.content == f"flag on {grid.id}: spam / @everyone look"
    assert not alert.mentions and alert.allowed_mentions == {"parse": []}


async def test_persistent_button_works_after_a_restart(world: World) -> None:
    fake = world.fake
    await (await fake.slash(world.alice, world.chan, "post", text="@everyone press")).wait_response()
    posted = await fake.wait_message(lambda m: m.custom_ids == ["persist:hello", "persist:thank"])
    assert not posted.mentions and posted.allowed_mentions == {"parse": []}

    await fake.stop_bot()
    await fake.start_bot(DemoBot(world.guild.id, world.mod_chan.id))
    assert fake.gateway.identifies == 2
    reply = await (await fake.click(world.alice, posted, label="Hello")).wait_response()
    assert reply.content == "hello alice" and reply.ephemeral
    thanks = await (await fake.select(world.alice, posted, "persist:thank", [world.bob, world.alice])).wait_response()
    assert thanks.content == "thanks to ['alice', 'bob']"
    with pytest.raises(InvalidInteraction, match="1 to 2 values"):
        await fake.select(world.alice, posted, "persist:thank", [])


@pytest.mark.parametrize("case", ["fresh", "expired", "backdated"])
async def test_late_results_fall_back_to_the_channel(world: World, case: str) -> None:
    fake = world.fake
    age = datetime.timedelta(minutes=14, seconds=30) if case == "backdated" else datetime.timedelta(0)
    ix = await fake.slash(world.alice, world.chan, "late", age=age)
    await ix.wait_response()
    if case == "expired":
        ix.expire()
    world.bot.release.set()
    result = await ix.wait_message(lambda m: bool(m.attachments))
    result_event = fake.events[-1]
    assert result.attachments[0].image().size == (16, 16)
    if case == "fresh":
        assert result_event.kind == "edit" and result.id == ix.original.id and result.content == "done"
    else:
        assert result_event.kind == "channel_message"
        assert result.mentions.users == {world.alice.id} and not result.mentions.everyone
    rejected = [(r.status, r.code) for r in fake.requests if r.status >= 400]
    assert rejected == ([(401, 50027)] if case == "expired" else [])


async def test_not_found_errors_and_limits_are_discords(world: World) -> None:
    channel = world.bot.get_channel(world.chan.id)
    with pytest.raises(discord.NotFound) as missing:
        await channel.fetch_message(1)
    assert missing.value.code == 10008
    with pytest.raises(discord.NotFound) as gone:
        await world.bot.fetch_channel(1)
    assert gone.value.code == 10003
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035 and "2000" in too_long.value.text
    await world.fake.delete_channel(world.mod_chan)
    with pytest.raises(discord.NotFound) as deleted:
        await world.bot.get_partial_messageable(world.mod_chan.id).send("into the void")
    assert deleted.value.code == 10003


async def test_a_429_is_retried_by_the_client(world: World) -> None:
    fake = world.fake
    fake.fail_next("POST /channels/{channel_id}/messages", status=429, retry_after=0.05)
    message = await world.bot.get_channel(world.chan.id).send("after a rate limit")
    assert fake.message(message.id).content == "after a rate limit"
    assert [r.status for r in fake.requests if r.method == "POST" and "/messages" in r.path] == [429, 200]


async def test_client_paces_itself_by_the_rate_limit_headers(world: World) -> None:
    fake = world.fake
    fake.rate_limit("PATCH /channels/{channel_id}/messages/{message_id}", limit=2, per=0.3)
    message = await world.bot.get_channel(world.chan.id).send("step 0")
    for step in range(1, 4):
        message = await message.edit(content=f"step {step}")
    edits = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.status for r in edits] == [200, 200, 200]
    assert fake.message(message.id).content == "step 3"


async def test_a_late_acknowledgement_is_an_unknown_interaction(world: World) -> None:
    fake = world.fake
    fake.ack_deadline = 0.0
    await fake.slash(world.alice, world.chan, "ping")
    rejected = await fake.wait_request(lambda r: r.status >= 400)
    assert (rejected.status, rejected.code) == (404, 10062)


async def test_client_resumes_after_the_server_closes_the_socket(world: World) -> None:
    fake = world.fake
    await fake.disconnect()
    assert fake.gateway.resumes == 1
    assert (await (await fake.slash(world.alice, world.chan, "ping")).wait_response()).content == "pong"


async def test_discord_py_is_pointed_back_at_discord_on_close() -> None:
    def target() -> tuple[str, str]:
        return discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)

    original = target()
    async with FakeDiscord() as fake:
        patched = target()
    assert patched == (f"{fake.base_url}/api/v10", fake.gateway_url)
    assert target() == original == ("https://discord.com/api/v10", "wss://gateway.discord.gg/")


async def test_a_wrong_token_fails_login_like_discord(fake_discord: FakeDiscord) -> None:  # noqa: F811
    guild = fake_discord.add_guild()
    with pytest.raises(discord.LoginFailure):
        await fake_discord.start_bot(DemoBot(guild.id, guild.add_text_channel("log").id), token="not-the-token")
    assert fake_discord.bot is None and (fake_discord.requests[-1].status, fake_discord.requests[-1].code) == (401, 0)


def test_command_definitions_are_checked_against_discords_limits() -> None:
    option = {"type": 3, "description": "d"}
    too_many = {"name": "big", "description": "d", "options": [{**option, "name": f"o{i}"} for i in range(26)]}
    misordered = {
        "name": "ord",
        "description": "d",
        "options": [{**option, "name": "a"}, {**option, "name": "b", "required": True}],
    }
    for command, field in [
        (too_many, "options"),
        (misordered, "required"),
        ({"name": "Bad Name", "description": "d"}, "name"),
    ]:
        with pytest.raises(DiscordError) as rejected:
            check_commands([command])
        assert rejected.value.code == 50035 and field in json.dumps(rejected.value.errors)
    check_commands([{**too_many, "options": too_many["options"][:25]}, {"name": "Flag image", "type": 3}])


async def test_gateway_speaks_plain_json_without_compression(fake_discord: FakeDiscord) -> None:  # noqa: F811
    fake_discord.add_guild("Plain")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake_discord.gateway_url + "?v=10&encoding=json") as ws,
    ):
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 1, "d": None})
        assert (await ws.receive_json())["op"] == 11
        await ws.send_json({"op": 2, "d": {"token": fake_discord.token, "intents": 1, "properties": {}}})
        ready, guild_create = await ws.receive_json(), await ws.receive_json()
        assert (ready["t"], ready["s"], guild_create["t"], guild_create["d"]["name"]) == (
            "READY",
            1,
            "GUILD_CREATE",
            "Plain",
        )
        assert json.loads(json.dumps(ready["d"]["application"]))["id"] == str(fake_discord.application_id)
