"""The warning store on a real database: what counts toward a ban, the window, resetting after a ban, clearing,
auditing, and one server's warnings apart from another's. Time is passed in, never read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database
from moderation.audit import AuditLog
from moderation.warnings import HOUR_S, Escalation, WarningError, WarningStore

G, OTHER = 42, 43
"""The server every test's warnings belong to, and another."""
ALICE, MOD = 7, 99
T0 = 1_700_000_000.0
RULE = Escalation(warnings_to_ban=3, window_hours=24, ban_hours=2)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with await Database.open(tmp_path / "dq.db") as database:
        yield database


@pytest.fixture
def store(db: Database) -> WarningStore:
    return WarningStore(db)


async def warn(store: WarningStore, at_hours: float, *, guild_id: int = G, may_ban: bool = True,
               rule: Escalation = RULE) -> tuple[int, bool]:  # fmt: skip
    """Warn alice ``at_hours`` after T0; return how many counted and whether it banned."""
    warned = await store.add(guild_id, ALICE, "blocked prompt (sexual)", "prompt", given_by=None, rule=rule,
                             may_ban=may_ban, now=T0 + at_hours * HOUR_S)  # fmt: skip
    return warned.counted, warned.banned


async def test_the_third_warning_within_the_window_bans_until_the_ban_time(store: WarningStore) -> None:
    assert [await warn(store, h) for h in (0, 1)] == [(1, False), (2, False)]
    warned = await store.add(G, ALICE, "flagged image removed (review #3)", "flag", given_by=MOD, rule=RULE,
                             may_ban=True, now=T0 + 5 * HOUR_S)  # fmt: skip
    assert warned.banned and warned.counted == 3
    assert warned.warning.banned_until == T0 + 5 * HOUR_S + 2 * HOUR_S
    assert (warned.warning.source, warned.warning.given_by) == ("flag", MOD)


async def test_warnings_older_than_the_window_do_not_count(store: WarningStore) -> None:
    assert [await warn(store, h) for h in (0, 10, 24.5)] == [(1, False), (2, False), (2, False)]
    assert await warn(store, 30) == (3, True)  # 10 h, 24.5 h and 30 h are within 24 h of each other


async def test_after_an_automatic_ban_only_later_warnings_count(store: WarningStore, db: Database) -> None:
    for h in (0, 1, 2):
        await warn(store, h)
    assert await warn(store, 3) == (1, False)
    assert await warn(store, 4) == (2, False)
    assert await store.counting(G, ALICE, RULE, now=T0 + 4 * HOUR_S) == 2
    actions = [entry.action for entry in await AuditLog(db).entries(G)]
    assert actions == ["warning", "warning", "auto_ban", "warning", "warning", "warning"]


async def test_a_member_already_banned_is_warned_but_not_banned_again(store: WarningStore) -> None:
    assert [await warn(store, h, may_ban=False) for h in (0, 1, 2)] == [(1, False), (2, False), (3, False)]
    assert await warn(store, 3) == (4, True)  # banned no longer: the next warning brings the ban


async def test_a_cleared_warning_no_longer_counts_and_is_audited(store: WarningStore, db: Database) -> None:
    await warn(store, 0)
    await warn(store, 1)
    [newest, oldest] = await store.of_member(G, ALICE)
    cleared = await store.clear(G, oldest.id, MOD, "a false alarm", now=T0 + 2 * HOUR_S)
    assert (cleared.cleared_by, cleared.cleared_at) == (MOD, T0 + 2 * HOUR_S)
    assert await warn(store, 2) == (2, False)
    with pytest.raises(WarningError, match=f"Warning #{oldest.id} was already cleared"):
        await store.clear(G, oldest.id, MOD, now=T0 + 3 * HOUR_S)
    [entry, *_] = await AuditLog(db).entries(G)
    assert (entry.action, entry.moderator_id, entry.member_id) == ("warning", None, ALICE)
    unwarned = [entry for entry in await AuditLog(db).entries(G) if entry.action == "unwarned"]
    assert [(e.moderator_id, e.detail) for e in unwarned] == [
        (MOD, f"warning #{oldest.id} (blocked prompt (sexual)): a false alarm")
    ]
    assert newest.id > oldest.id


async def test_another_servers_warnings_are_neither_counted_listed_nor_cleared(store: WarningStore) -> None:
    await warn(store, 0, guild_id=OTHER)
    await warn(store, 1, guild_id=OTHER)
    assert await warn(store, 2) == (1, False)  # two in the other server do not count here
    [theirs, _] = await store.of_member(OTHER, ALICE)
    with pytest.raises(WarningError, match=f"There is no warning #{theirs.id} in this server"):
        await store.clear(G, theirs.id, MOD, now=T0)
    assert [w.guild_id for w in await store.of_member(G, ALICE)] == [G]
    assert (await store.of_member(OTHER, ALICE))[0].cleared_at is None


async def test_one_warning_bans_when_the_server_says_so(store: WarningStore) -> None:
    assert await warn(store, 0, rule=Escalation(1, 0.5, 0.25)) == (1, True)
