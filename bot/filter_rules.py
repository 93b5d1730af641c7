"""Admins' live changes to the prompt filter: stored, so they survive restarts, and replayed over the config.

The config's rules are the base; each ``/admin filter add|remove`` is one row,
applied in order on every start and every reload. A change that no longer
applies (the config dropped the rule it removes) is skipped with a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from bot.db import Database
from moderation.filter import PromptFilter, RuleError, RuleList

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleChange:
    """One admin's addition or removal of one rule."""

    actor_id: int
    add: bool
    category: str
    into: RuleList
    rule: str

    def apply(self, prompt_filter: PromptFilter) -> PromptFilter:
        """The filter with this change made; :class:`RuleError` if it cannot be."""
        if self.add:
            return prompt_filter.with_rule(self.category, self.rule, into=self.into)
        return prompt_filter.without_rule(self.category, self.rule, into=self.into)


def replay(prompt_filter: PromptFilter, changes: Iterable[RuleChange]) -> PromptFilter:
    """``prompt_filter`` with every change that still applies made, in order."""
    for change in changes:
        try:
            prompt_filter = change.apply(prompt_filter)
        except RuleError as exc:
            log.warning("skipping a stored filter change that no longer applies (%s)", exc)
    return prompt_filter


class FilterRuleLog:
    """The table of live filter changes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def changes(self) -> list[RuleChange]:
        """Every change, oldest first."""
        async with self._db.conn.execute(
            "SELECT actor_id, op, category, list, rule FROM filter_rule_changes ORDER BY id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            RuleChange(row["actor_id"], row["op"] == "add", row["category"], row["list"], row["rule"]) for row in rows
        ]

    async def record(self, change: RuleChange) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO filter_rule_changes (at, actor_id, op, category, list, rule) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), change.actor_id, "add" if change.add else "remove", change.category, change.into,
                 change.rule),  # fmt: skip
            )
