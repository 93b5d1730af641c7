"""The flag store on a real database: counting, thresholds, review states, audit, one server's records apart."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database
from moderation import FlagError, FlaggedImage, FlagSettings, FlagStore, ReviewError
from moderation.audit import AuditLog
from moderation.flag_reports import FlagReports

G = 42
"""The server every test's records belong to."""


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with await Database.open(tmp_path / "dq.db") as database:
        yield database


@pytest.fixture
def store(db: Database) -> FlagStore:
    return FlagStore(db, FlagSettings(alert_score=2, hide_score=3, accuracy_min_resolved=2, accuracy_bonus=1))


def image(message_id: int = 100, author_id: int = 7) -> FlaggedImage:
    return FlaggedImage(message_id=message_id, guild_id=G, author_id=author_id, prompt=f"prompt {message_id}",
                        channel_id=5)  # fmt: skip


@pytest.fixture
def audit(db: Database) -> AuditLog:
    return AuditLog(db)


@pytest.fixture
def reports(db: Database, store: FlagStore) -> FlagReports:
    return FlagReports(db, store.settings)


async def test_duplicate_flags_by_one_member_count_once(store: FlagStore) -> None:
    first = await store.flag(image(), flagger_id=1, reason="sexual")
    again = await store.flag(image(), flagger_id=1, reason="violence", note="changed my mind")
    assert first.counted and not again.counted
    assert (again.item.score, again.item.flag_count) == (1.0, 1)
    assert [flag.reason for flag in await store.flags(G, first.item.id)] == ["sexual"]


async def test_alert_then_hide_each_fire_exactly_once(store: FlagStore, audit: AuditLog) -> None:
    outcomes = [await store.flag(image(), flagger_id=member, reason="hate") for member in (1, 2, 3, 4, 5)]
    assert [(o.alert, o.hide) for o in outcomes] == [(False, False), (True, False), (False, True), (False, False),
                                                     (False, False)]  # fmt: skip
    assert outcomes[-1].item.hidden and outcomes[-1].item.score == 5
    hides = [entry for entry in await audit.entries(G) if entry.action == "auto_hidden"]
    assert len(hides) == 1 and hides[0].moderator_id is None and hides[0].member_id == 7


async def test_equal_thresholds_alert_and_hide_together(db: Database) -> None:
    store = FlagStore(db, FlagSettings(alert_score=2, hide_score=2))
    await store.flag(image(), flagger_id=1, reason="hate")
    outcome = await store.flag(image(), flagger_id=2, reason="hate")
    assert (outcome.alert, outcome.hide) == (True, True)


async def test_states_cannot_skip(store: FlagStore, audit: AuditLog) -> None:
    item = (await store.flag(image(), flagger_id=1, reason="sexual")).item
    dismissed = await store.dismiss(G, item.id, moderator_id=90, note="fine art")
    assert (dismissed.state, dismissed.resolved_by) == ("dismissed", 90)
    with pytest.raises(ReviewError, match="already dismissed; reopen it first"):
        await store.action(G, item.id, moderator_id=90, resolution="removed")
    with pytest.raises(ReviewError, match="already dismissed"):
        await store.dismiss(G, item.id, moderator_id=90)
    reopened = await store.reopen(G, item.id, moderator_id=91, note="second look")
    assert (reopened.state, reopened.resolution, reopened.resolved_at) == ("open", None, None)
    with pytest.raises(ReviewError, match="already open"):
        await store.reopen(G, item.id, moderator_id=91)
    banned = await store.action(G, item.id, moderator_id=91, resolution="banned")
    assert (banned.state, banned.resolution) == ("actioned", "banned")
    with pytest.raises(ReviewError, match="already actioned"):
        await store.dismiss(G, item.id, moderator_id=90)
    with pytest.raises(ReviewError, match="no review item #999"):
        await store.dismiss(G, 999, moderator_id=90)
    with pytest.raises(ReviewError, match="Resolve with one of"):
        await store.action(G, item.id, moderator_id=90, resolution="shamed")  # type: ignore[arg-type]
    log = await audit.entries(G, item_id=item.id)
    assert [(e.action, e.moderator_id, e.detail) for e in reversed(log)] == [
        ("dismissed", 90, "fine art"),
        ("reopened", 91, "second look"),
        ("banned", 91, ""),
    ]


async def test_database_refuses_a_state_without_its_resolution(db: Database, store: FlagStore) -> None:
    item = (await store.flag(image(), flagger_id=1, reason="sexual")).item
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(
                "UPDATE moderation_items SET state = 'actioned', resolved_at = 1 WHERE id = ?", (item.id,)
            )


async def test_audit_log_is_append_only(db: Database, store: FlagStore, audit: AuditLog) -> None:
    item = (await store.flag(image(), flagger_id=1, reason="sexual")).item
    await store.dismiss(G, item.id, moderator_id=90)
    for statement in ("UPDATE moderation_audit SET action = 'nothing happened'", "DELETE FROM moderation_audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as conn:
                await conn.execute(statement)
    assert [entry.action for entry in await audit.entries(G)] == ["dismissed"]


async def test_actions_outside_the_review_queue_are_audited(store: FlagStore, audit: AuditLog) -> None:
    outcome = await store.flag(image(), flagger_id=1, reason="hate")
    await audit.record(G, 9, "deleted_image", item_id=outcome.item.id, member_id=7, detail=" job #3 ", now=50.0)
    await audit.record(G, 9, "deleted_image", member_id=8, detail="job #4", now=60.0)
    entries = [(e.at, e.moderator_id, e.action, e.item_id, e.member_id, e.detail) for e in await audit.entries(G)]
    assert entries == [(60.0, 9, "deleted_image", None, 8, "job #4"),
                       (50.0, 9, "deleted_image", outcome.item.id, 7, "job #3")]
    assert [e.detail for e in await audit.entries(G, item_id=outcome.item.id)] == ["job #3"]


async def test_flags_on_a_reviewed_item_count_but_do_not_alert(store: FlagStore) -> None:
    item = (await store.flag(image(), flagger_id=1, reason="sexual")).item
    await store.dismiss(G, item.id, moderator_id=90)
    outcomes = [await store.flag(image(), flagger_id=member, reason="sexual") for member in (2, 3, 4)]
    assert not any(o.alert or o.hide for o in outcomes)
    assert outcomes[-1].item.score == 4 and not outcomes[-1].item.hidden


async def test_accurate_flaggers_weigh_more(store: FlagStore, reports: FlagReports) -> None:
    for message_id in (1, 2):
        item = (await store.flag(image(message_id), flagger_id=1, reason="hate")).item
        await store.action(G, item.id, moderator_id=90, resolution="removed")
    assert (await reports.member_history(G, 1)).flag_weight == 2.0
    outcome = await store.flag(image(3), flagger_id=1, reason="hate")
    assert outcome.item.score == 2.0 and outcome.alert
    item = (await store.flag(image(4), flagger_id=2, reason="hate")).item
    await store.dismiss(G, item.id, moderator_id=90)
    assert (await reports.member_history(G, 2)).flag_weight == 1.0  # one resolved flag is too few to judge


async def test_bad_reason_or_note_is_refused(store: FlagStore) -> None:
    with pytest.raises(FlagError, match="Pick a reason"):
        await store.flag(image(), flagger_id=1, reason="ugly")
    with pytest.raises(FlagError, match="under 300"):
        await store.flag(image(), flagger_id=1, reason="other", note="x" * 301)
    assert await store.item_for_message(G, 100) is None


async def test_review_queue_by_score_paginated(store: FlagStore) -> None:
    for message_id, flaggers in ((1, 1), (2, 3), (3, 2), (4, 2), (5, 1)):
        for flagger in range(flaggers):
            await store.flag(image(message_id), flagger_id=flagger, reason="other")
    closed = await store.item_for_message(G, 5)
    await store.dismiss(G, closed.id, moderator_id=90)
    first = await store.review_queue(G, per_page=2)
    second = await store.review_queue(G, page=1, per_page=2)
    assert [i.message_id for i in first.items] == [2, 3]  # score 3, then the older of the two at 2
    assert [i.message_id for i in second.items] == [4, 1]
    assert (first.total, first.pages) == (4, 2)
    assert (await store.review_queue(G, page=2, per_page=2)).items == []


async def test_member_history_and_stats(store: FlagStore, reports: FlagReports) -> None:
    a = (await store.flag(image(1, author_id=7), flagger_id=1, reason="sexual")).item
    b = (await store.flag(image(2, author_id=7), flagger_id=1, reason="hate")).item
    await store.flag(image(2, author_id=7), flagger_id=2, reason="hate")
    await store.flag(image(3, author_id=8), flagger_id=1, reason="hate")
    await store.action(G, a.id, moderator_id=90, resolution="warned")
    await store.dismiss(G, b.id, moderator_id=90)
    author = await reports.member_history(G, 7)
    assert [i.message_id for i in author.items] == [2, 1]
    assert (author.open, author.dismissed, author.actioned) == (0, 1, 1)
    flagger = await reports.member_history(G, 1)
    assert (flagger.flags_given, flagger.flags_upheld, flagger.flags_rejected) == (3, 1, 1)
    stats = await reports.stats(G)
    assert (stats.open, stats.dismissed, stats.actioned, stats.flags) == (1, 1, {"warned": 1}, 4)
    assert stats.reasons == {"sexual": 1, "hate": 3}


async def test_item_keeps_the_job_it_came_from(db: Database, store: FlagStore) -> None:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO jobs (guild_id, number, member_id, prompt, params, seeds, cost, created_at)"
            " VALUES (5, 1, 7, 'a cat', '{}', '[1]', 1, ?)",
            (time.time(),),
        )
        job_id = cursor.lastrowid
    flagged = FlaggedImage(message_id=100, guild_id=G, author_id=7, prompt="a cat", job_id=job_id)
    assert (await store.flag(flagged, flagger_id=1, reason="other")).item.job_id == job_id


async def test_another_servers_items_are_never_found(store: FlagStore, audit: AuditLog, reports: FlagReports) -> None:
    item = (await store.flag(image(), flagger_id=1, reason="hate")).item
    other = 43
    with pytest.raises(ReviewError, match=f"no review item #{item.id}"):
        await store.dismiss(other, item.id, moderator_id=90)
    assert await store.item(other, item.id) is None and await store.item_for_message(other, 100) is None
    assert await store.flags(other, item.id) == [] and (await store.review_queue(other)).total == 0
    assert (await reports.member_history(other, 7)).items == [] and (await reports.stats(other)).flags == 0
    with pytest.raises(FlagError, match="no such image"):
        await store.flag(FlaggedImage(100, other, 7, "prompt"), flagger_id=2, reason="hate")
    assert (await store.item(G, item.id)).state == "open" and await audit.entries(other) == []


async def test_each_servers_thresholds_apply(store: FlagStore) -> None:
    lenient = FlagSettings(alert_score=5, hide_score=5)
    outcomes = [await store.flag(image(), flagger_id=m, reason="hate", thresholds=lenient) for m in (1, 2, 3)]
    assert not any(o.alert or o.hide for o in outcomes)
