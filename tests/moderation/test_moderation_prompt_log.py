"""The blocked-prompt log: what is recorded, per server, and retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database
from moderation import BlockedPromptLog, ModerationSettings, PromptFilter

DAY = 86400.0


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[BlockedPromptLog]:
    async with await Database.open(tmp_path / "dq.db") as db:
        yield BlockedPromptLog(db, retention_days=30)


@pytest.fixture(scope="module")
def prompt_filter() -> PromptFilter:
    # Trademarks block by default; flagged here, so the log keeps one prompt of each action.
    return PromptFilter.from_settings(
        ModerationSettings.model_validate({"filter": {"categories": {"trademark": {"action": "flag"}}}})
    )


async def test_records_member_prompt_verdict_and_time(log: BlockedPromptLog, prompt_filter: PromptFilter) -> None:
    blocked = prompt_filter.check("a (nude:1.3) elf")
    flagged = prompt_filter.check("pikachu")
    await log.record(3, 7, blocked, now=1000.0)
    await log.record(3, 8, flagged, now=1001.0)
    await log.record(4, 7, blocked, now=1002.0)
    newest, oldest = await log.recent(3)
    assert (oldest.member_id, oldest.guild_id, oldest.prompt, oldest.created_at) == (7, 3, "a (nude:1.3) elf", 1000.0)
    assert (oldest.action, oldest.category, oldest.kind, oldest.rule, oldest.span) == (
        "block", "sexual", "keyword", "nude", (3, 7),
    )  # fmt: skip
    assert (newest.action, newest.category) == ("flag", "trademark")
    assert [entry.member_id for entry in await log.recent(3, member_id=7)] == [7]
    assert [entry.guild_id for entry in await log.recent(4)] == [4]  # another server's entries are never listed
    assert [entry.member_id for entry in await log.recent(3, since=1001.0)] == [8]


async def test_a_negative_prompt_is_logged_as_the_negative(log: BlockedPromptLog, prompt_filter: PromptFilter) -> None:
    await log.record(3, 7, prompt_filter.check_negative("blurry, call me on 07700 900123"), now=1000.0)
    await log.record(3, 7, prompt_filter.check("a nude elf"), now=1001.0)
    prompt, negative = await log.recent(3)
    assert (negative.part, negative.prompt, negative.category) == (
        "negative", "blurry, call me on 07700 900123", "personal_info",
    )  # fmt: skip
    assert (prompt.part, prompt.category) == ("prompt", "sexual")


async def test_allowed_prompts_are_not_logged(log: BlockedPromptLog, prompt_filter: PromptFilter) -> None:
    with pytest.raises(ValueError, match="only blocked or flagged"):
        await log.record(3, 7, prompt_filter.check("a cat"))


async def test_purge_drops_what_is_past_retention(log: BlockedPromptLog, prompt_filter: PromptFilter) -> None:
    verdict = prompt_filter.check("nude")
    now = 100 * DAY
    for age_days in (31, 29, 1):
        await log.record(3, 7, verdict, now=now - age_days * DAY)
    assert await log.purge(now=now) == 1
    assert len(await log.recent(3)) == 2
