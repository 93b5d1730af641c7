"""``dreamqueue forget USER_ID``: the operator forgets a user in every server, each server's deletion audited."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.db import Database
from bot.preferences import PreferenceStore
from engine.types import Limits
from moderation import FlaggedImage, FlagSettings, FlagStore, ModerationSettings, PromptFilter
from moderation.prompt_log import BlockedPromptLog

USER, OTHER = 7, 8


def configured(tmp_path: Path) -> tuple[Path, Path]:
    """A database path, and a config file that names it."""
    db_path, config = tmp_path / "dq.db", tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"database": {"path": str(db_path)}}))
    return db_path, config


async def seed(db_path: Path) -> None:
    """Blocked prompts, flagged images, flags and jobs of two users in two servers."""
    verdict = PromptFilter.from_settings(ModerationSettings()).check("nude")
    async with await Database.open(db_path) as db:
        prompts, flags = BlockedPromptLog(db), FlagStore(db, FlagSettings())
        for guild in (1, 2):
            for member in (USER, OTHER):
                await prompts.record(guild, member, verdict)
                flagger = OTHER if member == USER else USER
                await flags.flag(FlaggedImage(guild * 100 + member, guild, member, "a prompt"), flagger, "other")
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO jobs (member_id, guild_id, number, prompt, params, seeds, cost, state, created_at)"
                    " VALUES (?, ?, ?, 'secret', '{}', '[1]', 1, 'done', 0)",
                    [(USER, guild, 1), (OTHER, guild, 2)],
                )


def test_cli_forget_deletes_a_users_data_everywhere_and_keeps_everyone_elses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, config = configured(tmp_path)
    asyncio.run(seed(db_path))

    assert main(["forget", str(USER), "--config", str(config)]) == 0
    assert "forgot user 7 in 2 server(s)" in capsys.readouterr().out
    with sqlite3.connect(db_path) as conn:
        def one(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        assert one(f"SELECT count(*) FROM moderation_prompt_log WHERE member_id = {USER}") == [(0,)]
        assert one(f"SELECT count(*) FROM moderation_items WHERE author_id = {USER}") == [(0,)]
        assert one(f"SELECT count(*) FROM moderation_flags WHERE flagger_id = {USER}") == [(0,)]
        assert one(f"SELECT DISTINCT prompt FROM jobs WHERE member_id = {USER}") == [("",)]
        assert one(f"SELECT count(*) FROM moderation_prompt_log WHERE member_id = {OTHER}") == [(2,)]
        assert one(f"SELECT score, flag_count FROM moderation_items WHERE author_id = {OTHER}") == [(0, 0), (0, 0)]
        assert one(f"SELECT DISTINCT prompt FROM jobs WHERE member_id = {OTHER}") == [("secret",)]
        assert one("SELECT guild_id, moderator_id, member_id FROM moderation_audit WHERE action = 'forgot_member'"
                   " ORDER BY guild_id") == [(1, None, USER), (2, None, USER)]  # fmt: skip


def test_cli_forget_without_a_database_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"database": {"path": str(tmp_path / "none.db")}}))
    assert main(["forget", "7", "--config", str(config)]) == 2
    assert "nothing to forget" in capsys.readouterr().err


def test_cli_forget_leaves_queued_jobs_it_cannot_cancel_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, config = configured(tmp_path)
    asyncio.run(seed(db_path))
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO jobs (member_id, guild_id, number, prompt, params, seeds, cost, state, created_at)"
                     f" VALUES ({USER}, 2, 3, 'waiting', '{{}}', '[1]', 1, 'queued', 0)")  # fmt: skip

    assert main(["forget", str(USER), "--config", str(config)]) == 1
    said = capsys.readouterr()
    assert "server 2: deleted 1 blocked prompt(s)" in said.out and "left 1 queued or running job(s)" in said.out
    assert "still has queued or running jobs (1 in server 2)" in said.err and "/admin forget" in said.err
    with sqlite3.connect(db_path) as conn:
        assert conn.execute(f"SELECT state, prompt FROM jobs WHERE member_id = {USER} ORDER BY id").fetchall() == [
            ("done", ""), ("done", ""), ("queued", "waiting")
        ]


def test_cli_forget_deletes_a_users_settings_in_servers_where_they_have_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, config = configured(tmp_path)

    async def seed_preferences() -> None:
        async with await Database.open(db_path) as db:
            store = PreferenceStore(db)
            for member in (USER, OTHER):
                await store.change(5, member, {"steps": 30, "aspect": "16:9"}, Limits())

    asyncio.run(seed_preferences())
    assert main(["forget", str(USER), "--config", str(config)]) == 0
    assert "forgot user 7 in 1 server(s)" in capsys.readouterr().out
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT guild_id, member_id FROM member_preferences").fetchall() == [(5, OTHER)]
