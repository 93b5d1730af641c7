"""Retention and forgetting: a server's data goes a while after the bot leaves it; a member's on request."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.scheduler.models import Member
from tests.e2e.conftest import Server, World, has_text, shows_progress
from tests.e2e.test_moderation import flag
from tests.e2e.test_tenancy import private

DAY = 86400.0


def rows(db_path: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, args).fetchall()


def server_rows(db_path: Path, guild_id: int) -> dict[str, int]:
    """The server's rows in each table keyed by server."""
    tables = ("moderation_prompt_log", "moderation_items", "moderation_flags", "moderation_warnings",
              "moderation_audit", "filter_rule_changes", "guild_settings", "review_alerts")  # fmt: skip
    return {table: rows(db_path, f"SELECT count(*) FROM {table} WHERE guild_id = ?", guild_id)[0][0]
            for table in tables}  # fmt: skip


async def test_a_left_servers_data_is_deleted_after_the_retention_period(world: World, other: Server) -> None:
    app = await world.start(discord={"left_guild_retention_days": 5})
    await private(await world.fake.slash(other.admin, other.dreams, "admin", "filter", "add", category="words",
                                         rule="zorp"))  # fmt: skip
    await private(await world.fake.slash(other.admin, other.dreams, "admin", "settings", "set", key="alert_score",
                                         value=1.5))  # fmt: skip
    assert "Matched" in await private(await world.dream(other.member, other.dreams, prompt="a zorp"))
    assert "Matched" in await private(await world.dream(world.alice, prompt="a nude elf"))
    kept = server_rows(world.db_path, world.guild.id)
    assert all(server_rows(world.db_path, other.guild.id)[table] for table in ("moderation_prompt_log",
               "filter_rule_changes", "guild_settings", "moderation_warnings", "moderation_audit"))  # fmt: skip

    world.fake.remove_bot(other.guild)
    await world.fake.wait_until(lambda: bool(rows(world.db_path, "SELECT 1 FROM guilds WHERE left_at IS NOT NULL")))
    left = server_rows(world.db_path, other.guild.id)
    assert (await app.services.retention.purge(now=time.time() + 4 * DAY)).servers == {}
    assert server_rows(world.db_path, other.guild.id) == left  # within the retention period

    purged = await app.services.retention.purge(now=time.time() + 6 * DAY)
    assert purged.servers[other.guild.id] == sum(left.values())
    assert set(server_rows(world.db_path, other.guild.id).values()) == {0}
    assert server_rows(world.db_path, world.guild.id) == kept  # the server the bot is still in keeps everything
    assert rows(world.db_path, "SELECT guild_id FROM guilds") == [(world.guild.id,)]
    assert app.services.server_settings(other.guild.id).overridden == frozenset()


async def test_a_rejoined_server_is_kept_again(world: World, other: Server) -> None:
    app = await world.start(discord={"left_guild_retention_days": 5})
    await private(await world.fake.slash(other.admin, other.dreams, "admin", "filter", "add", category="words",
                                         rule="zorp"))  # fmt: skip
    world.fake.remove_bot(other.guild)
    await world.fake.wait_until(lambda: bool(rows(world.db_path, "SELECT 1 FROM guilds WHERE left_at IS NOT NULL")))
    world.fake.guilds.append(other.guild)
    world.fake.invite_bot(other.guild)
    await world.fake.wait_until(lambda: bool(rows(
        world.db_path, "SELECT 1 FROM guilds WHERE guild_id = ? AND left_at IS NULL", other.guild.id
    )))  # fmt: skip
    assert (await app.services.retention.purge(now=time.time() + 6 * DAY)).servers == {}
    assert server_rows(world.db_path, other.guild.id)["filter_rule_changes"] == 1


async def test_a_server_left_while_the_bot_was_offline_counts_as_left_at_the_next_start(
    world: World, other: Server
) -> None:
    await world.start()
    await world.fake.wait_until(lambda: len(rows(world.db_path, "SELECT 1 FROM guilds WHERE left_at IS NULL")) == 2)
    await world.stop()
    world.fake.guilds.remove(other.guild)  # removed while the bot was away: no event will tell it
    await world.start(discord={"guild_ids": [world.guild.id]})  # commands cannot be synced to it any more
    await world.fake.wait_until(lambda: bool(rows(world.db_path, "SELECT 1 FROM guilds WHERE left_at IS NOT NULL")))
    assert rows(world.db_path, "SELECT guild_id FROM guilds WHERE left_at IS NOT NULL") == [(other.guild.id,)]


async def test_forget_a_member_in_this_server_only(world: World, other: Server) -> None:
    app = await world.start()
    result = await world.result(await world.dream(world.alice, prompt="a beach", count=1))
    await flag(world, world.bob, result)
    others = await world.result(await world.dream(world.bob, prompt="a hill", count=1))
    await flag(world, world.alice, others)
    await flag(world, world.carol, others)
    assert "Matched" in await private(await world.dream(world.alice, prompt="a nude elf"))
    assert "Matched" in await private(await world.dream(other.alice, other.dreams, prompt="a nude elf"))
    alice = world.alice.id

    said = await private(await world.fake.slash(world.admin, world.dreams, "admin", "forget", member=world.alice))
    assert "deleted 1 blocked prompt(s), 1 flagged image(s) and 1 flag(s); blanked the prompts of 1 job(s)" in said
    assert rows(world.db_path, "SELECT guild_id FROM moderation_prompt_log WHERE member_id = ?", alice) == [
        (other.guild.id,)
    ]  # the other server's record of alice is theirs
    assert rows(world.db_path, "SELECT prompt FROM jobs WHERE member_id = ?", alice) == [("",)]
    assert rows(world.db_path, "SELECT prompt FROM jobs WHERE member_id = ?", world.bob.id) == [("a hill",)]
    [item] = (await app.services.flags.review_queue(world.guild.id)).items
    assert (item.author_id, item.flag_count, item.score) == (world.bob.id, 1, 1.0)  # alice's flag is gone
    [entry, *_] = await app.services.audit.entries(world.guild.id)
    assert (entry.action, entry.moderator_id, entry.member_id) == ("forgot_member", world.admin.id, alice)
    # The other server's log has only the warning its blocked prompt gave alice there.
    assert [entry.action for entry in await app.services.audit.entries(other.guild.id)] == ["warning"]


async def test_forget_cancels_the_members_queued_and_running_jobs_here_and_blanks_their_prompts(
    world: World, other: Server
) -> None:
    app = await world.start(engine={"simulated_seconds_per_step": 1.0})
    running = await world.dream(world.alice, prompt="a secret lake", count=1, steps=20)
    await running.wait_message(shows_progress)
    queued = await world.dream(world.alice, prompt="a secret hill", count=2, steps=2)
    await queued.wait_message(has_text("Queued: #1 of"))
    elsewhere = await world.dream(other.alice, other.dreams, prompt="a lake in B", count=1, steps=2)
    await elsewhere.wait_message(has_text("Queued"))

    said = await private(await world.fake.slash(world.admin, world.dreams, "admin", "forget", member=world.alice))
    assert "cancelled 2 queued or running job(s) (refunded); deleted 0 blocked prompt(s)" in said
    assert "blanked the prompts of 2 job(s)" in said and "left" not in said
    for ix in (running, queued):
        await ix.wait_message(has_text("your data in this server was deleted on request"))
    alice = world.alice.id
    assert rows(world.db_path, "SELECT state, prompt FROM jobs WHERE member_id = ? AND guild_id = ?", alice,
                world.guild.id) == [("cancelled", ""), ("cancelled", "")]  # fmt: skip
    quota = app.services.dreams.quota_status(world.guild.id, Member(alice))
    assert (quota.burst_left, quota.queued_jobs) == (8, 0)  # refunded, as a cancel is
    [(state, prompt)] = rows(world.db_path, "SELECT state, prompt FROM jobs WHERE guild_id = ?", other.guild.id)
    assert state in ("queued", "running") and prompt == "a lake in B"  # the other server's job is theirs
