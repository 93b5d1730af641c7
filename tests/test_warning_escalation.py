"""Warnings escalate to timed bans that lift themselves: the bot's one ``warn`` call on a scheduler whose clock
the test moves (no sleeping), with each server's own rule; the settings' ranges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.guild_settings import GuildSettingsStore
from bot.refusal import Refusal
from bot.scheduler.clock import VirtualClock
from bot.scheduler.errors import Banned
from bot.settings import ConfigError, Settings, parse_settings
from bot.warnings import AUTOMATIC, Warnings, WarnOutcome, duration
from moderation.audit import AuditLog
from moderation.warnings import WarningStore
from tests.scheduler.harness import GUILD, Harness, settings

OTHER = 2
ALICE, ADMIN = 7, 99


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path / "dq.db", VirtualClock(), *settings())
    await harness.start()
    yield harness
    await harness.stop()


@pytest.fixture
async def servers(harness: Harness) -> GuildSettingsStore:
    store = GuildSettingsStore(harness.db, Settings())  # the config's defaults: 3 within 24 hours, ban 24 hours
    await store.load()
    return store


@pytest.fixture
def warnings(harness: Harness, servers: GuildSettingsStore) -> Warnings:
    return Warnings(WarningStore(harness.db), harness.service, servers.effective)


async def test_the_third_warning_bans_for_the_ban_time_and_the_ban_lifts_itself(harness: Harness,
                                                                                warnings: Warnings) -> None:
    heard: list[WarnOutcome] = []

    async def listener(outcome: WarnOutcome) -> None:
        heard.append(outcome)

    warnings.on_ban(listener)
    first = await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    assert not first.banned and "warning 1 of 3 within 24 hours" in first.notice()
    await harness.clock.advance(3600)
    await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    third = await warnings.warn(GUILD, ALICE, "blocked prompt (hate)", "prompt")
    assert third.banned and heard == [third]
    assert "banned from generating images here for 24 hours" in third.notice()
    assert f"<@{ALICE}> was banned from generating for 24 hours" in third.moderators_notice()
    ban = harness.service.ban_of(GUILD, ALICE)
    assert ban is not None and ban.until == harness.clock.now() + 24 * 3600 and ban.banned_by == AUTOMATIC
    with pytest.raises(Banned, match="for another 24 hours"):
        await harness.submit(ALICE)
    await harness.submit(ALICE, guild=OTHER)  # banned in that server only

    await harness.clock.advance(24 * 3600 - 1)
    with pytest.raises(Banned):
        await harness.submit(ALICE)
    await harness.clock.advance(1)
    assert harness.service.ban_of(GUILD, ALICE) is None
    assert (await harness.submit(ALICE)).job.member_id == ALICE
    [entry, *_] = await harness.service.audit_log(GUILD)
    assert (entry.action, entry.actor_id, entry.after["reason"]) == ("ban", AUTOMATIC,
                                                                     "3 warnings (the last: blocked prompt (hate))")
    assert [e.action for e in await AuditLog(harness.db).entries(GUILD)] == ["auto_ban", *["warning"] * 3]


async def test_a_member_under_a_moderators_ban_is_warned_but_their_ban_stays(harness: Harness,
                                                                            warnings: Warnings) -> None:
    await harness.service.ban(ADMIN, GUILD, ALICE, until=None, reason="spam")
    outcomes = [await warnings.warn(GUILD, ALICE, "flagged image removed (review #1)", "flag", given_by=ADMIN)
                for _ in range(3)]  # fmt: skip
    assert [outcome.banned for outcome in outcomes] == [False] * 3
    assert outcomes[-1].notice() == "⚠️ This adds a warning to your record in this server."
    ban = harness.service.ban_of(GUILD, ALICE)
    assert ban is not None and (ban.until, ban.reason) == (None, "spam")


async def test_each_server_escalates_by_its_own_settings(harness: Harness, warnings: Warnings,
                                                         servers: GuildSettingsStore) -> None:
    await servers.set(OTHER, "warnings_to_ban", 1, ADMIN)
    await servers.set(OTHER, "auto_ban_hours", 0.5, ADMIN)
    await servers.set(GUILD, "warning_window_hours", 1, ADMIN)
    banned = await warnings.warn(OTHER, ALICE, "withheld image", "image")
    assert banned.banned and "for 30 minutes" in banned.notice()
    await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    await harness.clock.advance(3601)  # the first two fell out of this server's one-hour window
    outcome = await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    assert (outcome.banned, outcome.warned.counted) == (False, 1)
    record = await warnings.record(GUILD, ALICE)
    assert (len(record.warnings), record.counting, record.ban) == (3, 1, None)
    await harness.clock.advance(1800)
    assert harness.service.ban_of(OTHER, ALICE) is None


async def test_a_jobs_warning_is_given_once_and_its_ban_carried_out_once(harness: Harness, warnings: Warnings) -> None:
    heard: list[WarnOutcome] = []

    async def listener(outcome: WarnOutcome) -> None:
        heard.append(outcome)

    warnings.on_ban(listener)
    jobs = [(await harness.submit(ALICE)).job for _ in range(3)]
    first = await warnings.warn(GUILD, ALICE, "image withheld (job #1)", "image", job_id=jobs[0].job_id)
    again = await warnings.warn(GUILD, ALICE, "image withheld (job #1)", "image", job_id=jobs[0].job_id)
    assert again.warned.repeated and again.warning == first.warning and again.warned.counted == 1
    # The bot stopped after the third warning was stored, before its ban: asked again, it bans, and says so once.
    await warnings.warn(GUILD, ALICE, "image withheld (job #2)", "image", job_id=jobs[1].job_id)
    third = await warnings.store.add(GUILD, ALICE, "image withheld (job #3)", "image", given_by=None,
                                     rule=warnings.rule(GUILD), may_ban=True, now=harness.clock.now(),
                                     job_id=jobs[2].job_id)  # fmt: skip
    assert third.banned and harness.service.ban_of(GUILD, ALICE) is None
    retried = await warnings.warn(GUILD, ALICE, "image withheld (job #3)", "image", job_id=jobs[2].job_id)
    assert retried.banned and harness.service.ban_of(GUILD, ALICE) is not None and heard == [retried]
    assert (await warnings.warn(GUILD, ALICE, "image withheld (job #3)", "image", job_id=jobs[2].job_id)).banned
    assert heard == [retried]  # in force now: not banned, nor announced, again
    assert len((await warnings.record(GUILD, ALICE)).warnings) == 3


async def test_clearing_a_warning_keeps_it_from_the_count(harness: Harness, warnings: Warnings) -> None:
    first = await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")
    await warnings.clear(GUILD, first.warning.id, ADMIN, "the filter was wrong")
    assert not (await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")).banned
    assert (await warnings.warn(GUILD, ALICE, "blocked prompt (sexual)", "prompt")).banned


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("warnings_to_ban", 0, "`warnings_to_ban` must be a whole number from 1 to 20; 0 is out of range."),
        ("warnings_to_ban", 21, "from 1 to 20; 21 is out of range"),
        ("warnings_to_ban", 2.5, "must be a whole number from 1 to 20; 2.5 is out of range"),
        ("warning_window_hours", 0, "`warning_window_hours` must be more than 0 and at most 8760 hours; 0 is out"),
        ("warning_window_hours", -1, "must be more than 0 and at most 8760 hours; -1 is out of range"),
        ("auto_ban_hours", 0, "`auto_ban_hours` must be more than 0 and at most 8760 hours; 0 is out of range"),
        ("auto_ban_hours", -24, "must be more than 0 and at most 8760 hours; -24 is out of range"),
        ("auto_ban_hours", 9000, "at most 8760 hours; 9000 is out of range"),
    ],
)
async def test_a_server_setting_out_of_range_is_refused_with_the_range(servers: GuildSettingsStore, key: str,
                                                                        value: float, text: str) -> None:
    with pytest.raises(Refusal) as refused:
        await servers.set(GUILD, key, value, ADMIN)
    assert text in str(refused.value)
    assert servers.effective(GUILD).values()[key] == servers.effective(OTHER).values()[key]


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [("warnings_to_ban", 0, "from 1 to 20"), ("warning_window_hours", 0, "more than 0"),
     ("auto_ban_hours", -1, "more than 0 and at most 8760 hours")],
)
def test_a_config_default_out_of_range_stops_the_start_with_its_key(key: str, value: float, text: str) -> None:
    with pytest.raises(ConfigError, match=rf"moderation\.warnings\.{key}: (Value error, )?must be .*{text}"):
        parse_settings({"moderation": {"warnings": {key: value}}}, env={})


def test_durations_read_as_people_say_them() -> None:
    assert [duration(h) for h in (0.25, 1, 1.5, 24, 36, 168)] == [
        "15 minutes", "1 hour", "1.5 hours", "24 hours", "36 hours", "7 days"
    ]
