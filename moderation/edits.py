"""Live rule edits (an admin's ``/admin filter add|remove``) applied to filter settings, all at once.

Edits are stored and replayed at every start and reload. Replaying them one
at a time would rebuild the filter once per edit; instead the stored edits are
compacted (only the last edit of each rule matters) and applied to the
settings as data, so the filter is built once however long the history grows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import ValidationError

from moderation.config import FilterSettings
from moderation.rules import compile_regex, parse_keyword

RuleList = Literal["keywords", "regex", "allow"]


class RuleError(ValueError):
    """A live rule change cannot be applied; the text is safe to show the admin."""


class RuleEdit(Protocol):
    """One addition or removal of one rule of one category's list."""

    @property
    def add(self) -> bool: ...
    @property
    def category(self) -> str: ...
    @property
    def into(self) -> RuleList: ...
    @property
    def rule(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Edit:
    """A :class:`RuleEdit` on its own (the bot's stored changes carry who made them too)."""

    add: bool
    category: str
    into: RuleList
    rule: str


E = TypeVar("E", bound=RuleEdit)


def compact(edits: Iterable[E]) -> list[E]:
    """At most two edits per rule, in the order of each rule's last edit, that give the same rules as ``edits``.

    Only a rule's last edit matters, except that a removal after an addition
    keeps that addition before it: the removal then has a rule to remove
    (whether or not the config had it) instead of being skipped with a warning.
    """
    kept: dict[tuple[str, str, str], list[E]] = {}
    for edit in edits:
        key = (edit.category, edit.into, edit.rule)
        first = kept.pop(key, [edit])[0]  # re-inserted at the end: dicts keep insertion order
        kept[key] = [first, edit] if first.add and not edit.add else [edit]
    return [edit for pair in kept.values() for edit in pair]


def _check(into: RuleList, rule: str) -> None:
    try:
        compile_regex(rule) if into == "regex" else parse_keyword(rule)
    except ValueError as exc:
        raise RuleError(str(exc)) from None


def _edit(categories: dict[str, dict[str, Any]], edit: RuleEdit) -> None:
    current = categories.get(edit.category)
    entries = tuple(current.get(edit.into, ())) if current else ()
    if edit.add:
        if edit.rule not in entries:
            _check(edit.into, edit.rule)
            categories.setdefault(edit.category, {})[edit.into] = (*entries, edit.rule)
    elif current is None or edit.rule not in entries:
        raise RuleError(f"{edit.category} has no {edit.into} entry {edit.rule!r}")
    else:
        current[edit.into] = tuple(entry for entry in entries if entry != edit.rule)


def edited(settings: FilterSettings, edits: Sequence[RuleEdit],
           skipped: Callable[[RuleError], None] | None = None) -> FilterSettings:  # fmt: skip
    """``settings`` with ``edits`` made, in order; a category left with no keyword or regex is removed.

    An edit that cannot be made raises :class:`RuleError`, or is passed to
    ``skipped`` and left out when one is given. A category that does not exist
    yet is created, with the ``block`` action.
    """
    data = settings.model_dump()
    data["default_rules"] = False  # the shipped rules are already merged into categories
    categories: dict[str, dict[str, Any]] = data["categories"]
    for edit in edits:
        try:
            _edit(categories, edit)
        except RuleError as exc:
            if skipped is None:
                raise
            skipped(exc)
    for name in [name for name, rules in categories.items() if not rules.get("keywords") and not rules.get("regex")]:
        del categories[name]
    return validated(data)


def without_categories(settings: FilterSettings, names: Iterable[str]) -> FilterSettings:
    """``settings`` without these categories (a server that turned them off); unknown names are ignored."""
    data = settings.model_dump()
    data["default_rules"] = False
    data["categories"] = {name: rules for name, rules in data["categories"].items() if name not in set(names)}
    return validated(data)


def validated(data: dict[str, Any]) -> FilterSettings:
    """Filter settings from edited data; the negative prompt's and age-restricted channels' categories that are
    gone are dropped with them."""
    for key in ("negative_categories", "nsfw_prompt_categories"):
        data[key] = [name for name in data.get(key, ()) if name in data["categories"]]
    try:
        return FilterSettings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = error["loc"][1] if len(error["loc"]) > 1 else error["loc"][0]  # the category, if any
        raise RuleError(f"{where}: {error['msg']}") from None
