"""Upgrading a database made by the release before servers were kept apart (schema 5, ``fixtures/schema_v5.sql``).

Rows with no server are given guild 0; jobs are numbered 1, 2, ... in each
server in their original order; the per-member tables are keyed by server;
nothing (images above all) is lost; and the buttons already posted still
find their job.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database, _migrations
from bot.scheduler.clock import VirtualClock
from bot.scheduler.errors import Banned, JobNotFound
from bot.scheduler.models import DreamRequest, JobState, Member
from bot.scheduler.service import DreamService
from bot.views import RerollButton
from engine.simulated import SimulatedEngine
from engine.types import GenerationParams

FIXTURE = Path(__file__).parent / "fixtures" / "schema_v5.sql"


def load_fixture(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        raw.executescript(FIXTURE.read_text("utf-8"))
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 5


@pytest.fixture
async def migrated(tmp_path: Path) -> AsyncIterator[Database]:
    path = tmp_path / "old.db"
    load_fixture(path)
    db = await Database.open(path)
    yield db
    await db.close()


async def rows(db: Database, sql: str) -> list[tuple]:
    async with db.conn.execute(sql) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def test_rows_without_a_server_go_to_guild_0_and_jobs_are_numbered_per_server(migrated: Database) -> None:
    assert await migrated.user_version() == len(_migrations())
    assert await rows(migrated, "SELECT id, guild_id, number, state FROM jobs ORDER BY id") == [
        (1, 0, 1, "done"), (2, 111, 1, "done"), (3, 222, 1, "done"), (4, 111, 2, "done"), (5, 0, 2, "done"),
        (6, 111, 3, "queued"),
    ]
    assert await rows(migrated, "SELECT count(*) FROM job_images") == [(6,)]  # no rebuild cascaded to images
    assert await rows(migrated, "SELECT guild_id, member_id, reason FROM bans") == [(0, 13, "spam")]
    assert await rows(migrated, "SELECT guild_id, tier, name, value FROM tier_limits") == [(0, "default", "burst", 6)]
    assert await rows(migrated, "SELECT guild_id, member_id, name, value FROM member_overrides") == [
        (0, 12, "daily_images", 50)
    ]
    assert await rows(migrated, "SELECT DISTINCT guild_id FROM quota_state") == [(0,)]
    assert await rows(migrated, "SELECT count(*), min(guild_id), max(guild_id) FROM admin_audit") == [(5, 0, 0)]


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("quota_state", ["guild_id", "member_id"]),
        ("tier_limits", ["guild_id", "tier", "name"]),
        ("member_overrides", ["guild_id", "member_id", "name"]),
        ("bans", ["guild_id", "member_id"]),
        ("server_weights", ["guild_id"]),
    ],
)
async def test_per_member_tables_are_keyed_by_server(migrated: Database, table: str, key: list[str]) -> None:
    found = await rows(migrated, f"SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk")
    assert [name for (name,) in found] == key


async def test_the_new_schema_refuses_rows_without_a_server(migrated: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="guild_id and jobs.number are required"):
        async with migrated.transaction() as conn:
            await conn.execute(
                "INSERT INTO jobs (member_id, prompt, params, seeds, cost, created_at) VALUES (1, 'x', '{}', '[1]', 1, 0)"
            )
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        async with migrated.transaction() as conn:
            await conn.execute(
                "INSERT INTO jobs (guild_id, number, member_id, prompt, params, seeds, cost, created_at)"
                " VALUES (111, 2, 1, 'x', '{}', '[1]', 1, 0)"
            )
    with pytest.raises(sqlite3.IntegrityError, match="never changes server"):
        async with migrated.transaction() as conn:
            await conn.execute("UPDATE jobs SET guild_id = 222 WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with migrated.transaction() as conn:
            await conn.execute("UPDATE admin_audit SET guild_id = 111")


async def test_the_upgrade_adds_warnings_kept_per_server(migrated: Database) -> None:
    found = await rows(migrated, "SELECT name, \"notnull\" FROM pragma_table_info('moderation_warnings')")
    assert ("guild_id", 1) in found and ("member_id", 1) in found
    assert await rows(migrated, "SELECT count(*) FROM moderation_warnings") == [(0,)]
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        async with migrated.transaction() as conn:
            await conn.execute("INSERT INTO moderation_warnings (guild_id, member_id, source, reason, created_at)"
                               " VALUES (111, 12, 'gossip', 'x', 0)")  # fmt: skip


async def test_the_old_jobs_buttons_and_queue_work_after_the_upgrade(migrated: Database) -> None:
    clock = VirtualClock(start=1_700_000_100.0)
    engine = SimulatedEngine(seconds_per_step=0.1, max_batch_images=8, image_max_side=8, sleep=clock.sleep)
    await engine.start()
    service = DreamService(migrated, engine, clock=clock)
    clock.settle_hook = service.journal.wait_idle
    await service.start()
    try:
        # A result posted before the upgrade carries the job's global id in its buttons' custom ids.
        match = RerollButton.__discord_ui_compiled_template__.fullmatch("dq:reroll:2")
        assert match is not None
        job = await service.job(111, int(match["job"]))
        assert (job.number, job.state, job.result_message_id) == (1, JobState.DONE, 9001)
        assert len(await service.images(111, job.job_id)) == 2
        with pytest.raises(JobNotFound):
            await service.job(222, job.job_id)  # another server's job is no job at all
        # The job left queued (paused) resumes with its number; new jobs continue each server's numbering.
        assert [(view.job_id, view.number) for view in service.active_jobs(111)] == [(6, 3)]
        assert (await service.job_by_number(111, 3)).job_id == 6
        params = GenerationParams(steps=2)
        new = await service.submit(DreamRequest(Member(12), 111, "a ship", (1,), "ix-7", params))
        first = await service.submit(DreamRequest(Member(12), 333, "a ship", (1,), "ix-8", params))
        assert (new.job.job_id, new.job.number, first.job.number) == (7, 4, 1)
        # The old ban belongs to guild 0 ("before servers"): it bars nobody in a real server.
        assert service.quota_status(0, Member(13)).banned
        await service.submit(DreamRequest(Member(13), 222, "a ship", (1,), "ix-9", params))
        with pytest.raises(Banned):
            await service.submit(DreamRequest(Member(13), 0, "a ship", (1,), "ix-10", params))
        assert service.tier_limits(0, "default")["burst"] == 6
        assert service.tier_limits(111, "default")["burst"] != 6
    finally:
        await clock.run(service.close(grace_s=0))
        await engine.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    load_fixture(path)
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(_migrations()) + 1}")
    with pytest.raises(Exception, match=f"schema version {len(_migrations()) + 1}, newer than this release knows"):
        await Database.open(path)
