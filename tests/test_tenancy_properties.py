"""Random moderation commands from random members of random servers never touch another server's rows.

After every step, every table keyed by server is read back for each server the
step did not come from, and must be exactly as it was; and whatever a read
returns belongs to the server that asked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.db import Database
from bot.filter_rules import FilterRuleLog, GuildFilters, RuleChange
from bot.forget import Forgetting
from bot.guild_settings import GuildSettingsStore
from bot.refusal import Refusal
from bot.settings import Settings
from moderation import FlagError, FlaggedImage, FlagStore, ModerationSettings, PromptFilter, ReviewError, RuleError
from moderation.audit import AuditLog
from moderation.flag_reports import FlagReports
from moderation.prompt_log import BlockedPromptLog
from moderation.warnings import Escalation, WarningError, WarningStore

GUILDS = (1, 2, 3)
MEMBERS = (10, 11, 12)
TABLES = ("moderation_prompt_log", "moderation_items", "moderation_flags", "moderation_audit", "filter_rule_changes",
          "guild_settings", "review_alerts", "moderation_warnings", "jobs")  # fmt: skip
RULE = Escalation(warnings_to_ban=2, window_hours=1, ban_hours=1)
BLOCKED = PromptFilter.from_settings(ModerationSettings()).check("nude")

guild, member = st.sampled_from(GUILDS), st.sampled_from(MEMBERS)
step = st.one_of(
    st.tuples(st.just("flag"), guild, member, member, st.integers(1, 8)),
    st.tuples(st.just("review"), guild, member, st.integers(1, 10), st.sampled_from(["dismiss", "banned", "reopen"])),
    st.tuples(st.just("prompt"), guild, member),
    st.tuples(st.just("rule"), guild, member, st.booleans(), st.sampled_from(["zorp", "blip*"])),
    st.tuples(st.just("setting"), guild, member, st.sampled_from(["alert_score", "hide_score"]), st.floats(0, 120)),
    st.tuples(st.just("tier_role"), guild, member, st.sampled_from(["default", "gold"]), st.integers(100, 102),
              st.booleans()),
    st.tuples(st.just("list"), guild, member, st.sampled_from(["admin_role_ids", "hide_score"]), st.integers(100, 102),
              st.booleans()),
    st.tuples(st.just("forget"), guild, member),
    st.tuples(st.just("warn"), guild, member, st.booleans()),
    st.tuples(st.just("unwarn"), guild, member, st.integers(1, 10)),
    st.tuples(st.just("read"), guild, member, st.integers(1, 10)),
)


class Stores:
    """Every guild-scoped store, on one in-memory database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.flags = FlagStore(db, Settings().moderation.flags)
        self.reports = FlagReports(db, Settings().moderation.flags)
        self.prompts = BlockedPromptLog(db)
        self.audit = AuditLog(db)
        self.settings = GuildSettingsStore(db, Settings())
        self.filters = GuildFilters(PromptFilter.from_settings(ModerationSettings()), FilterRuleLog(db),
                                    lambda guild_id: self.settings.effective(guild_id).filter_off)  # fmt: skip
        self.forgetting = Forgetting(db)
        self.warnings = WarningStore(db)

    async def rows(self, guild_id: int) -> dict[str, list[tuple[Any, ...]]]:
        found = {}
        for table in TABLES:
            sql = f"SELECT * FROM {table} WHERE guild_id = ? ORDER BY rowid"
            async with self.db.conn.execute(sql, (guild_id,)) as cursor:
                found[table] = [tuple(row) for row in await cursor.fetchall()]
        return found

    async def run(self, op: tuple[Any, ...]) -> None:
        """One command; refusals are expected (another server's item or message, a bad value)."""
        kind, guild_id, member_id, *args = op
        try:
            if kind == "flag":
                author, message = args
                await self.flags.flag(FlaggedImage(message, guild_id, author, "a prompt"), member_id, "other")
            elif kind == "review":
                item_id, action = args
                if action == "dismiss":
                    await self.flags.dismiss(guild_id, item_id, member_id)
                elif action == "reopen":
                    await self.flags.reopen(guild_id, item_id, member_id)
                else:
                    await self.flags.action(guild_id, item_id, member_id, action)
            elif kind == "prompt":
                await self.prompts.record(guild_id, member_id, BLOCKED)
            elif kind == "rule":
                add, rule = args
                await self.filters.change(guild_id, RuleChange(member_id, add, "words", "keywords", rule))
            elif kind == "setting":
                key, value = args
                await self.settings.set(guild_id, key, value, member_id)
            elif kind == "tier_role":
                tier, role, add = args
                await self.settings.set_tier_role(guild_id, tier, role, member_id, add=add)
            elif kind == "list":
                key, role, add = args
                await self.settings.change_list(guild_id, key, (role,), member_id, add=add)
            elif kind == "forget":
                await self.forgetting.member(guild_id, member_id, None)
            elif kind == "warn":
                await self.warnings.add(guild_id, member_id, "a reason", "prompt", given_by=None, rule=RULE,
                                        may_ban=args[0], now=0.0)  # fmt: skip
            elif kind == "unwarn":
                await self.warnings.clear(guild_id, args[0], member_id, now=0.0)
            else:
                await self.read(guild_id, member_id, args[0])
        except (FlagError, ReviewError, RuleError, Refusal, WarningError):
            pass

    async def read(self, guild_id: int, member_id: int, item_id: int) -> None:
        """Every read a moderator can make returns only the asking server's records."""
        queue = await self.flags.review_queue(guild_id)
        items = queue.items + (await self.reports.member_history(guild_id, member_id)).items
        found = await self.flags.item(guild_id, item_id)
        assert {item.guild_id for item in items} <= {guild_id} and (found is None or found.guild_id == guild_id)
        assert {flag.guild_id for flag in await self.flags.flags(guild_id, item_id)} <= {guild_id}
        assert {entry.guild_id for entry in await self.audit.entries(guild_id)} <= {guild_id}
        assert {entry.guild_id for entry in await self.prompts.recent(guild_id)} <= {guild_id}
        assert {warning.guild_id for warning in await self.warnings.of_member(guild_id, member_id)} <= {guild_id}


async def scenario(steps: list[tuple[Any, ...]]) -> None:
    async with await Database.open(":memory:") as db:
        stores = Stores(db)
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO jobs (member_id, guild_id, number, prompt, params, seeds, cost, state, created_at)"
                " VALUES (?, ?, ?, 'a prompt', '{}', '[1]', 1, 'done', 0)",
                [(m, g, n) for g in GUILDS for n, m in enumerate(MEMBERS, start=1)],
            )
        for op in steps:
            others = [g for g in GUILDS if g != op[1]]
            before = {g: (await stores.rows(g), stores.settings.effective(g)) for g in others}
            await stores.run(op)
            after = {g: (await stores.rows(g), stores.settings.effective(g)) for g in others}
            assert after == before, f"{op} changed another server's rows or settings"
            assert (await stores.filters.get(op[1])) is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_commands_never_touch_another_servers_rows(steps: list[tuple[Any, ...]]) -> None:
    asyncio.run(scenario(steps))
