"""The prompt filter: one explainable verdict per prompt.

A verdict names the category, the kind of rule, the rule as the admin wrote it
and the span of what the member typed that matched, so the member and the
moderators can both see why. A category's allow-list exempts only the text an
entry covers: "grapes, nude" is still caught.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from moderation.config import PII_CATEGORY, FilterSettings, ModerationSettings
from moderation.normalise import PREPARE_STEPS, Mapped, apply, match_views
from moderation.pii import PiiDetector
from moderation.rules import KeywordIndex, compile_regex, parse_keyword

Action = Literal["allow", "block", "flag"]
RuleList = Literal["keywords", "regex", "allow"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the filter decided about one prompt, and why."""

    prompt: str
    allowed: bool
    """False only when the prompt is blocked; a flagged prompt runs."""
    action: Action
    category: str | None = None
    kind: str | None = None
    """``keyword`` or ``regex`` for rules; ``phone``, ``ssn``, ``email``, ``card`` or ``address`` for personal
    information."""
    rule: str | None = None
    """The rule as written in the config, or what recognised the personal information."""
    span: tuple[int, int] | None = None
    """``prompt[start:end]`` is the text that matched."""
    message: str | None = None
    """For the member, when the prompt is blocked."""

    @property
    def matched(self) -> str | None:
        """The text of the prompt that matched."""
        return None if self.span is None else self.prompt[self.span[0] : self.span[1]]

    def as_dict(self) -> dict[str, Any]:
        """The JSON fields of ``dreamqueue check-prompt``."""
        return {
            "prompt": self.prompt,
            "allowed": self.allowed,
            "category": self.category,
            "kind": self.kind,
            "rule": self.rule,
            "span": None if self.span is None else list(self.span),
            "action": self.action,
        }


class RuleError(ValueError):
    """A live rule change cannot be applied; the text is safe to show the admin."""


class _Found(NamedTuple):
    action: Action
    span: tuple[int, int]
    category: str
    kind: str
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    allow: bool
    """This keyword is on the category's allow-list."""


class PromptFilter:
    """Checks prompts against the configured categories and for personal information.

    Immutable: a live rule change builds a new filter (:meth:`with_rule`,
    :meth:`without_rule`), which the caller swaps in.
    """

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings
        self._keywords: KeywordIndex[_Category] = KeywordIndex(
            (parse_keyword(text), _Category(name, allow))
            for name, rules in settings.categories.items()
            for texts, allow in ((rules.keywords, False), (rules.allow, True))
            for text in texts
        )
        self._regexes = [
            (name, pattern, compile_regex(pattern))
            for name, rules in settings.categories.items()
            for pattern in rules.regex
        ]
        self._pii = PiiDetector(settings.pii.kinds, phone_regions=settings.pii.phone_regions, allow=settings.pii.allow)

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> PromptFilter:
        """The filter configured in the ``moderation:`` section."""
        return cls(settings.filter)

    def check(self, prompt: str) -> Verdict:
        """The verdict on ``prompt``: a blocking match wins over a flagging one, then the earliest."""
        prepared = apply(PREPARE_STEPS, Mapped.of(prompt))
        found = [*self._rule_matches(match_views(prepared)), *self._pii_matches(prepared)]
        if not found:
            return Verdict(prompt, allowed=True, action="allow")
        first = min(found, key=lambda f: (f.action != "block", f.span))
        return Verdict(prompt, first.action != "block", first.action, first.category, first.kind, first.rule,
                       first.span, first.message)  # fmt: skip

    def _rule_matches(self, views: list[Mapped]) -> list[_Found]:
        # Spans are compared in the original prompt, so an allow entry seen in one view covers a hit in another.
        allowed: dict[str, list[tuple[int, int]]] = defaultdict(list)
        hits: list[tuple[tuple[int, int], str, str, str]] = []
        for text in views:
            for hit in self._keywords.find(text):
                span = text.origin(hit.start, hit.end)
                if hit.payload.allow:
                    allowed[hit.payload.name].append(span)
                else:
                    hits.append((span, hit.payload.name, "keyword", hit.keyword.text))
            for name, pattern, compiled in self._regexes:
                hits += ((text.origin(*match.span()), name, "regex", pattern) for match in compiled.finditer(text.text))
        found = []
        for (start, end), name, kind, rule in hits:
            if any(a <= start and end <= b for a, b in allowed[name]):
                continue
            rules = self.settings.categories[name]
            found.append(_Found(rules.action, (start, end), name, kind, rule, rules.message))
        return found

    def _pii_matches(self, prepared: Mapped) -> list[_Found]:
        pii = self.settings.pii
        return [
            _Found(pii.action, prepared.origin(m.start, m.end), PII_CATEGORY, m.kind, m.rule, pii.message)
            for m in self._pii.find(prepared.text)
        ]

    def with_rule(self, category: str, rule: str, *, into: RuleList = "keywords") -> PromptFilter:
        """A new filter with ``rule`` added to a category's ``keywords``, ``regex`` or ``allow``.

        A category that does not exist yet is created, with the ``block`` action.
        """
        current = self.settings.categories.get(category)
        entries = getattr(current, into, ()) if current else ()
        if rule in entries:
            return self
        changed = current.model_dump() if current else {}
        changed[into] = (*entries, rule)
        return self._rebuilt(category, changed)

    def without_rule(self, category: str, rule: str, *, into: RuleList = "keywords") -> PromptFilter:
        """A new filter without ``rule``; a category left with no keyword or regex is removed."""
        current = self.settings.categories.get(category)
        if current is None or rule not in getattr(current, into):
            raise RuleError(f"{category} has no {into} entry {rule!r}")
        changed = current.model_dump()
        changed[into] = tuple(entry for entry in changed[into] if entry != rule)
        return self._rebuilt(category, changed if changed["keywords"] or changed["regex"] else None)

    def without_categories(self, names: Iterable[str]) -> PromptFilter:
        """A new filter without these categories (a server that turned them off); unknown names are ignored."""
        off = set(names) & set(self.settings.categories)
        if not off:
            return self
        data = self.settings.model_dump()
        data["default_rules"] = False  # the shipped rules are already merged into categories
        data["categories"] = {name: rules for name, rules in data["categories"].items() if name not in off}
        return PromptFilter(FilterSettings.model_validate(data))

    def _rebuilt(self, category: str, rules: dict[str, Any] | None) -> PromptFilter:
        data = self.settings.model_dump()
        data["default_rules"] = False  # the shipped rules are already merged into categories
        if rules is None:
            del data["categories"][category]
        else:
            data["categories"][category] = rules
        try:
            return PromptFilter(FilterSettings.model_validate(data))
        except ValidationError as exc:
            raise RuleError(f"{category}: {exc.errors(include_url=False)[0]['msg']}") from None


def verdict_lines(prompt_filter: PromptFilter, prompts: Iterable[str]) -> Iterator[str]:
    """One JSON object per prompt, as ``dreamqueue check-prompt`` prints them; streams, and lines keep no newline."""
    for prompt in prompts:
        yield json.dumps(prompt_filter.check(prompt.rstrip("\r\n")).as_dict(), ensure_ascii=False)
