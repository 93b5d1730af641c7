"""The prompt filter: one explainable verdict per prompt.

A verdict names the category, the kind of rule, the rule as the admin wrote it
and the span of what the member typed that matched, so the member and the
moderators can both see why. A category's allow-list exempts only the text an
entry covers: "grapes, nude" is still caught.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from moderation.config import NSFW_NEVER, PII_CATEGORY, FilterSettings, ModerationSettings
from moderation.edits import Edit, RuleEdit, RuleError, RuleList, edited, without_categories
from moderation.evasions import rejoined
from moderation.normalise import PREPARE_STEPS, Mapped, apply, match_views
from moderation.pii import PiiDetector
from moderation.rules import KeywordIndex, compile_regex, parse_keyword

Action = Literal["allow", "block", "flag"]
Part = Literal["prompt", "negative"]


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
    part: Part = "prompt"
    """Which text of the request this is about: the prompt or the negative prompt (then ``prompt`` holds that)."""

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
    :meth:`without_rule`, :meth:`with_edits`), which the caller swaps in. Building one with many rules takes a
    while: do it off the event loop.
    """

    def __init__(self, settings: FilterSettings) -> None:
        self.settings = settings
        self._keywords: KeywordIndex[_Category] = KeywordIndex(
            (parse_keyword(text), payload)
            for name, rules in settings.categories.items()
            for texts, payload in ((rules.keywords, _Category(name, False)), (rules.allow, _Category(name, True)))
            for text in texts
        )
        self._regexes = [
            (name, pattern, compile_regex(pattern))
            for name, rules in settings.categories.items()
            for pattern in rules.regex
        ]
        self._pii = PiiDetector(settings.pii.kinds, phone_regions=settings.pii.phone_regions, allow=settings.pii.allow)
        self._negative_checks = settings.negative_checks()

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> PromptFilter:
        """The filter configured in the ``moderation:`` section."""
        return cls(settings.filter)

    def check(self, prompt: str, allowed: Collection[str] = ()) -> Verdict:
        """The verdict on ``prompt``: a blocking match wins over a flagging one, then the earliest.

        ``allowed``: categories let through here (an age-restricted channel's); never hate or personal information.
        """
        return self._verdict(prompt, "prompt", None, allowed)

    def check_negative(self, negative: str, allowed: Collection[str] = ()) -> Verdict:
        """The verdict on a negative prompt: personal information, hate and the ``negative_categories`` only."""
        return self._verdict(negative, "negative", self._negative_checks, allowed)

    def check_request(self, prompt: str, negative: str = "", allowed: Collection[str] = ()) -> list[Verdict]:
        """The verdicts on a request's prompt and (when there is one) its negative prompt, in that order."""
        return [self.check(prompt, allowed), *([self.check_negative(negative, allowed)] if negative else [])]

    def _verdict(self, text: str, part: Part, categories: Collection[str] | None, allowed: Collection[str]) -> Verdict:
        prepared = apply(PREPARE_STEPS, Mapped.of(text))
        skipped = frozenset(allowed).difference(NSFW_NEVER)  # whatever a caller passes, hate is never let through
        found = [*self._rule_matches(match_views(prepared), text, categories, skipped), *self._pii_matches(prepared)]
        if not found:
            return Verdict(text, allowed=True, action="allow", part=part)
        first = min(found, key=lambda f: (f.action != "block", f.span))
        return Verdict(text, first.action != "block", first.action, first.category, first.kind, first.rule,
                       first.span, first.message, part)  # fmt: skip

    def _rule_matches(self, views: list[Mapped], text: str, categories: Collection[str] | None,
                      skipped: Collection[str]) -> list[_Found]:  # fmt: skip
        # Spans are compared in the original prompt, so an allow entry seen in one view covers a hit in another.
        allowed: dict[str, list[tuple[int, int]]] = defaultdict(list)
        hits: list[tuple[tuple[int, int], str, str, str]] = []
        for view in views:
            for hit in self._keywords.find(view):
                span = view.origin(hit.start, hit.end)
                if hit.payload.allow:
                    allowed[hit.payload.name].append(span)
                else:
                    hits.append((span, hit.payload.name, "keyword", hit.keyword.text))
            for name, pattern, compiled in self._regexes:
                hits += ((view.origin(*match.span()), name, "regex", pattern) for match in compiled.finditer(view.text))
        # A word split by a space into two non-words ("nu de"): only a keyword across the join counts.
        if (pairs := rejoined(views[0], text)) is not None:
            hits += (
                (pairs.text.origin(hit.start, hit.end), hit.payload.name, "keyword", hit.keyword.text)
                for hit in self._keywords.find(pairs.text)
                if not hit.payload.allow and pairs.covers_join(hit.start, hit.end)
            )
        found = []
        for (start, end), name, kind, rule in hits:
            if (categories is not None and name not in categories) or name in skipped or any(
                a <= start and end <= b for a, b in allowed[name]
            ):
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
        if current is not None and rule in getattr(current, into):
            return self
        return self.with_edits([Edit(True, category, into, rule)])

    def without_rule(self, category: str, rule: str, *, into: RuleList = "keywords") -> PromptFilter:
        """A new filter without ``rule``; a category left with no keyword or regex is removed."""
        return self.with_edits([Edit(False, category, into, rule)])

    def with_edits(self, edits: Sequence[RuleEdit], skipped: Callable[[RuleError], None] | None = None) -> PromptFilter:
        """A new filter with ``edits`` made, built once; see :func:`moderation.edits.edited`."""
        return PromptFilter(edited(self.settings, edits, skipped))

    def without_categories(self, names: Iterable[str]) -> PromptFilter:
        """A new filter without these categories (a server that turned them off); unknown names are ignored."""
        if not set(names) & set(self.settings.categories):
            return self
        return PromptFilter(without_categories(self.settings, names))


def release(retired: list[PromptFilter]) -> None:
    """Free filters no longer used, one automaton at a time. Run it in a thread, with ``retired`` holding the only
    references (it is emptied).

    Freeing an automaton holds the GIL until it is done: all of a big filter's at once would stall the event loop
    for about 100 ms; one at a time, the loop gets its turns between them.
    """
    parts = [part for prompt_filter in retired for part in prompt_filter._keywords.parts()]
    retired.clear()
    while parts:
        parts.pop()


def request_verdict(prompt_filter: PromptFilter, prompt: str, negative: str = "") -> dict[str, Any]:
    """The prompt's JSON verdict, with the negative prompt's under ``negative`` (its text under ``text``)."""
    verdict = prompt_filter.check(prompt).as_dict()
    if negative:
        fields = prompt_filter.check_negative(negative).as_dict()
        verdict["negative"] = {"text": fields.pop("prompt"), **fields}
    return verdict


def _request(line: str, negative: str) -> tuple[str, str]:
    """A line's prompt and negative prompt: the line itself, or a JSON object with ``prompt`` and ``negative``."""
    if not line.startswith("{"):
        return line, negative
    try:
        data = json.loads(line)
    except ValueError:
        return line, negative  # a prompt that merely starts with a brace, like "{{hentai}}"
    if not isinstance(data, dict):
        return line, negative
    prompt, negative = data.get("prompt"), data.get("negative", negative)
    if not isinstance(prompt, str) or not isinstance(negative, str):
        field = "prompt" if not isinstance(prompt, str) else "negative"
        raise ValueError(f'"{field}" must be a string in a JSON line')
    return prompt, negative


def verdict_lines(prompt_filter: PromptFilter, lines: Iterable[str], negative: str = "") -> Iterator[str]:
    """One JSON object per line, as ``dreamqueue check-prompt`` prints them; streams, and lines keep no newline.

    A line is a prompt, checked with ``negative``; or a JSON object with a
    ``prompt`` and optionally a ``negative``. A JSON line that cannot be
    checked gets ``{"line": n, "error": ...}`` instead, so output lines still
    match input lines.
    """
    for number, line in enumerate(lines, 1):
        try:
            prompt, negative_prompt = _request(line.rstrip("\r\n"), negative)
        except ValueError as exc:
            yield json.dumps({"line": number, "error": str(exc)}, ensure_ascii=False)
            continue
        yield json.dumps(request_verdict(prompt_filter, prompt, negative_prompt), ensure_ascii=False)
