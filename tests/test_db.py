"""The database applies migrations once, enforces its pragmas, and backs up online."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.db import Database, _migrations


async def test_open_creates_file_and_applies_all_migrations(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dq.db"
    db = await Database.open(path)
    try:
        assert path.exists()
        assert await db.user_version() == len(_migrations())
        async with db.conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        async with db.conn.execute("PRAGMA foreign_keys") as cur:
            assert (await cur.fetchone())[0] == 1
        async with db.conn.execute("PRAGMA busy_timeout") as cur:
            assert (await cur.fetchone())[0] == 5000
    finally:
        await db.close()
    # Re-opening applies nothing new and keeps the data.
    db = await Database.open(path)
    try:
        assert await db.user_version() == len(_migrations())
    finally:
        await db.close()


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "dq.db") as db:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO jobs (guild_id, number, member_id, prompt, params, seeds, cost, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (5, 1, 1, "a cat", "{}", "[1]", 1, time.time()),
                )
                raise RuntimeError("boom")
        async with db.conn.execute("SELECT count(*) FROM jobs") as cur:
            assert (await cur.fetchone())[0] == 0


async def test_a_transaction_cancelled_while_it_begins_leaves_none_open(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "dq.db") as db:

        async def begin_only() -> None:
            async with db.transaction():
                raise AssertionError("cancelled before the block")

        task = asyncio.create_task(begin_only())
        await asyncio.sleep(0)  # the task is now waiting for BEGIN, which the connection's thread runs regardless
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.transaction() as conn:  # "cannot start a transaction within a transaction" before the fix
            await conn.execute("INSERT INTO guilds (guild_id, joined_at) VALUES (1, 0)")
        assert not db.conn.in_transaction


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dq.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 999")
    with pytest.raises(Exception, match="newer than this release"):
        await Database.open(path)


async def test_backup_copies_live_database(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "dq.db") as db:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO jobs (guild_id, number, member_id, prompt, params, seeds, cost, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (5, 1, 42, "a lighthouse", "{}", "[7]", 1, time.time()),
            )
        await db.backup(tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("SELECT member_id, prompt FROM jobs").fetchall() == [(42, "a lighthouse")]
        assert copy.execute("PRAGMA user_version").fetchone()[0] == len(_migrations())
