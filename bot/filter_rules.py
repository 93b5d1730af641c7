"""Each server's prompt filter: the config's rules, with that server's live changes replayed over them.

The config's rules are the base for every server; each ``/admin filter
add|remove`` is one row of the server it was made in, applied in order when
that server's filter is built (compacted to each rule's last change, and built
once). A change that no longer applies (the config dropped the rule it
removes) is skipped with a warning. Filters are built lazily, off the event
loop, and cached per server; a replaced one is freed off the event loop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from bot.db import Database
from moderation.edits import compact
from moderation.filter import PromptFilter, RuleList, release

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


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """For building what lives as long as the process (the config's filter, at start): no garbage collection runs
    inside, and everything alive at the end leaves the collector's generations (:func:`gc.freeze`).

    A full collection walks every tracked object, holding the GIL on whichever thread it starts, a rebuild's thread
    too, while the event loop waits: with 10,000 rules the modules, the settings and the filter's keyword entries
    were about 100,000 objects and 40-130 ms. Frozen, they are never walked again; later rebuilds share the entries
    (see :mod:`moderation.rules`), so they add hardly any. Inside, every object made survives anyway: a collection
    would only walk them.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if enabled:
            gc.enable()


def replay(prompt_filter: PromptFilter, changes: Iterable[RuleChange]) -> PromptFilter:
    """``prompt_filter`` with every change that still applies made, in order, building the filter once.

    Only each rule's last change matters (:func:`moderation.edits.compact`), so
    the cost of a replay follows the rules changed, not the length of the history.
    """
    edits = compact(changes)
    if not edits:
        return prompt_filter
    return prompt_filter.with_edits(
        edits, lambda exc: log.warning("skipping a stored filter change that no longer applies (%s)", exc)
    )


class FilterRuleLog:
    """The table of live filter changes, per server."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def changes(self, guild_id: int) -> list[RuleChange]:
        """The server's changes, oldest first."""
        async with self._db.conn.execute(
            "SELECT actor_id, op, category, list, rule FROM filter_rule_changes WHERE guild_id = ? ORDER BY id",
            (guild_id,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            RuleChange(row["actor_id"], row["op"] == "add", row["category"], row["list"], row["rule"]) for row in rows
        ]

    async def guilds(self) -> set[int]:
        """The servers that have changes."""
        async with self._db.conn.execute("SELECT DISTINCT guild_id FROM filter_rule_changes") as cursor:
            return {guild_id for (guild_id,) in await cursor.fetchall()}

    async def record(self, guild_id: int, change: RuleChange) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO filter_rule_changes (guild_id, at, actor_id, op, category, list, rule)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (guild_id, time.time(), change.actor_id, "add" if change.add else "remove", change.category,
                 change.into, change.rule),
            )  # fmt: skip


class GuildFilters:
    """The prompt filter of each server, built on first use and kept until the base, its rules or the
    categories it turned off change."""

    def __init__(self, base: PromptFilter, rule_log: FilterRuleLog,
                 turned_off: Callable[[int], tuple[str, ...]]) -> None:  # fmt: skip
        self.base = base
        """The config's filter, which every server starts from."""
        self.rule_log = rule_log
        self._turned_off = turned_off
        self._built: dict[int, tuple[tuple[str, ...], PromptFilter]] = {}
        self._changed: set[int] = set()
        self._lock = asyncio.Lock()  # one build or change at a time, so a change is never lost to a build

    async def load(self) -> None:
        """Learn which servers have changes (at start); the others use the config's filter as it is."""
        self._changed = await self.rule_log.guilds()

    async def get(self, guild_id: int) -> PromptFilter:
        """The server's filter: the config's rules less the categories it turned off, then its changes."""
        off = self._turned_off(guild_id)
        if guild_id not in self._changed and not off:
            return self.base
        found = self._built.get(guild_id)
        if found is not None and found[0] == off:
            return found[1]
        async with self._lock:
            return await self._build(guild_id)

    async def _build(self, guild_id: int) -> PromptFilter:
        """The server's filter, built now if it is not yet or is out of date (the caller holds the lock)."""
        off = self._turned_off(guild_id)
        found = self._built.get(guild_id)
        if found is not None and found[0] == off:
            return found[1]
        del found  # the filter it holds is freed by _swap, bit by bit
        changes = await self.rule_log.changes(guild_id)
        # Off the event loop: building the matching automaton takes a while with many rules.
        built = await asyncio.to_thread(lambda: replay(self.base.without_categories(off), changes))
        await self._swap(guild_id, (off, built))
        return built

    async def change(self, guild_id: int, change: RuleChange) -> None:
        """Make one server's change (:class:`RuleError` if it cannot be), store it, and use it from the next prompt."""
        async with self._lock:
            changed = await asyncio.to_thread(change.apply, await self._build(guild_id))
            await self.rule_log.record(guild_id, change)
            self._changed.add(guild_id)
            await self._swap(guild_id, (self._turned_off(guild_id), changed))

    async def _swap(self, guild_id: int, built: tuple[tuple[str, ...], PromptFilter]) -> None:
        """Use ``built`` for the server, and free the filter it replaces in a thread, bit by bit (see
        :func:`moderation.filter.release`)."""
        retired = [found[1] for found in [self._built.get(guild_id)] if found is not None]
        self._built[guild_id] = built
        await asyncio.to_thread(release, retired)

    def forget(self, guild_id: int) -> None:
        """Drop a server's filter (its changes were deleted with the server's data)."""
        self._built.pop(guild_id, None)
        self._changed.discard(guild_id)

    async def rebase(self, base: PromptFilter) -> None:
        """Start every server from a new config filter (after a reload); each is rebuilt on its next use."""
        retired = [self.base, *(built for _, built in self._built.values())]
        self.base = base
        self._built.clear()
        await asyncio.to_thread(release, retired)
