"""Migration 0007 on a database with moderation records made before servers were kept apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.db import Database, _migrations

BEFORE = 6
"""The schema version before the moderation tenancy migration."""


def old_database(path: Path) -> None:
    """A database at version 6 holding moderation rows of server 5 and rows without a server."""
    with sqlite3.connect(path) as raw:
        for _, _, sql in _migrations()[:BEFORE]:
            raw.executescript(sql)
        raw.executescript(f"""
            PRAGMA user_version = {BEFORE};
            INSERT INTO moderation_items (id, message_id, guild_id, author_id, prompt, created_at, updated_at)
                VALUES (1, 100, 5, 7, 'a', 0, 0), (2, 200, NULL, 7, 'b', 0, 0);
            INSERT INTO moderation_flags (item_id, flagger_id, reason, weight, created_at)
                VALUES (1, 8, 'other', 1, 0), (2, 8, 'other', 1, 0);
            INSERT INTO moderation_audit (at, moderator_id, action, item_id)
                VALUES (0, 9, 'dismissed', 1), (0, 9, 'x', NULL);
            INSERT INTO moderation_prompt_log (member_id, guild_id, prompt, action, category, kind, rule, span_start,
                span_end, created_at) VALUES (7, NULL, 'p', 'block', 'c', 'keyword', 'r', 0, 1, 0);
            INSERT INTO filter_rule_changes (at, actor_id, op, category, list, rule)
                VALUES (0, 9, 'add', 'c', 'keywords', 'r');
            INSERT INTO review_alerts (item_id, channel_id, message_id) VALUES (1, 3, 4);
        """)


async def test_old_rows_get_their_items_server_or_the_placeholder_0(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    async with await Database.open(path) as db:
        async def guilds(sql: str) -> list[int]:
            async with db.conn.execute(sql) as cursor:
                return [row[0] for row in await cursor.fetchall()]

        assert await guilds("SELECT guild_id FROM moderation_items ORDER BY id") == [5, 0]
        assert await guilds("SELECT guild_id FROM moderation_flags ORDER BY item_id") == [5, 0]
        assert await guilds("SELECT guild_id FROM moderation_audit ORDER BY id") == [5, 0]
        assert await guilds("SELECT guild_id FROM moderation_prompt_log") == [0]
        assert await guilds("SELECT part FROM moderation_prompt_log") == ["prompt"]  # 0011: logged before negatives
        assert await guilds("SELECT guild_id FROM filter_rule_changes") == [0]
        assert await guilds("SELECT guild_id FROM review_alerts") == [5]
        for table, columns in (("moderation_audit", "(at, action)"), ("filter_rule_changes",
                               "(at, actor_id, op, category, list, rule)")):  # fmt: skip
            values = "(0, 'x')" if table == "moderation_audit" else "(0, 9, 'add', 'c', 'keywords', 'r')"
            with pytest.raises(sqlite3.IntegrityError, match=f"{table}.guild_id is required"):
                async with db.transaction() as conn:
                    await conn.execute(f"INSERT INTO {table} {columns} VALUES {values}")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as conn:
                await conn.execute("DELETE FROM moderation_audit WHERE guild_id = 5")
        async with db.transaction() as conn:  # once the bot has left server 5, its log may go
            await conn.execute("INSERT INTO guilds (guild_id, left_at) VALUES (5, 1)")
            await conn.execute("DELETE FROM moderation_audit WHERE guild_id = 5")
