"""Rules as admins write them: AutoMod keywords, compiled into one automaton, and linear-time regexes.

Keywords use Discord AutoMod's grammar: ``word`` matches the whole word,
``word*`` words starting with it, ``*word`` words ending with it and ``*word*``
anywhere; phrases of several words are allowed. Keywords are normalised exactly
like prompts, then indexed with their variants (a ``1`` read as ``i`` or ``l``,
a double letter typed stretched) in one Aho-Corasick automaton, so checking a
prompt costs the same with ten rules as with ten thousand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice, product
from typing import Generic, NamedTuple, TypeVar

import ahocorasick
import re2

from moderation.normalise import I_OR_L, STRETCHED, Mapped, normalise
from moderation.words import COMMON_WORDS

T = TypeVar("T")

MAX_KEYWORD_CHARS = 100
MAX_VARIANTS = 64
"""Most spellings indexed per keyword (the plain one first); past it, further variants are left out."""


@dataclass(frozen=True, slots=True)
class Keyword:
    """One parsed keyword rule."""

    text: str
    """As the admin wrote it, e.g. ``nude*``."""
    body: str
    """Normalised, without the wildcards."""
    word_start: bool
    """Must begin at a word boundary (no leading ``*``)."""
    word_end: bool
    """Must end at a word boundary (no trailing ``*``)."""
    stretched: tuple[int, ...] = ()
    """Offsets in ``body`` of letters the admin wrote three or more times (``xxx``): they match only stretched text."""


@lru_cache(maxsize=65536)
def parse_keyword(text: str) -> Keyword:
    """Parse an AutoMod keyword; raise ``ValueError`` (safe to show an admin) when it cannot be used."""
    rule = text.strip()
    if not rule:
        raise ValueError("keyword is empty")
    if len(rule) > MAX_KEYWORD_CHARS:
        raise ValueError(f"keyword is longer than {MAX_KEYWORD_CHARS} characters")
    word_start, word_end = not rule.startswith("*"), not rule.endswith("*")
    core = rule[0 if word_start else 1 : len(rule) if word_end else -1]
    if "*" in core:
        raise ValueError("'*' is allowed only at the start or end of a keyword")
    normalised = normalise(core)
    body = normalised.text.strip()
    if not body:
        raise ValueError("keyword has no letters or digits once normalised")
    if not word_start and not word_end and len(body) < 3:
        raise ValueError("a '*word*' keyword needs at least 3 letters, or it matches inside almost every prompt")
    lead = len(normalised.text) - len(normalised.text.lstrip())
    stretched = tuple(i - lead for i, mark in sorted(normalised.marks.items()) if mark & STRETCHED)
    return Keyword(rule, body, word_start, word_end, stretched)


# Letters typed as others that look alike in most fonts, which leetspeak tables miss: "nvde", "rnilf", "vvhore".
_LOOKALIKE_SPELLINGS = {"u": ("v",), "v": ("u",), "m": ("rn",), "w": ("vv",)}


def _spellings(char: str) -> tuple[str, ...]:
    if char in "il":
        return (char, I_OR_L)
    if char == I_OR_L:
        return ("i", "l", I_OR_L)
    return (char, *_LOOKALIKE_SPELLINGS.get(char, ()))


@lru_cache(maxsize=65536)  # a rebuild after one rule change spells out only the new keywords
def variants(body: str, stretched: tuple[int, ...] = ()) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Every indexed spelling of a normalised keyword, with the offsets that must be :data:`STRETCHED`.

    Text has stretched letters squeezed to one (``boooobs`` → ``bobs``), so a
    double letter also gets a single-letter spelling that only matches a
    squeezed run; plain ``bobs`` is not ``boobs``. Letters already ``stretched``
    in the keyword itself keep that requirement. Look-alike spellings (``v`` for
    ``u``, ``rn`` for ``m``, ``vv`` for ``w``) that are common words themselves
    (``burn`` for ``bum``) are left out, so they never raise a false alarm.
    """
    segments: list[list[tuple[str, tuple[int, ...]]]] = []
    for run in re.finditer(r"(.)\1*", body):
        char, length = run.group(1), len(run.group())
        if run.start() in stretched:
            segments.append([(spelled, (0,)) for spelled in _spellings(char)])
            continue
        options = [("".join(spelled), ()) for spelled in product(_spellings(char), repeat=length)]
        if length == 2 and char.isalpha():
            options += [(spelled, (0,)) for spelled in _spellings(char)]
        segments.append(options)
    found: dict[str, tuple[int, ...]] = {}
    for combination in islice(product(*segments), MAX_VARIANTS):
        spelling, stretched = "", ()
        for piece, offsets in combination:
            stretched += tuple(len(spelling) + offset for offset in offsets)
            spelling += piece
        found.setdefault(spelling, stretched)
    return tuple((spelling, marks) for spelling, marks in found.items()
                 if spelling == body or marks or spelling not in COMMON_WORDS)  # fmt: skip


class Hit(NamedTuple, Generic[T]):
    """A keyword found in normalised text at ``[start, end)``."""

    start: int
    end: int
    keyword: Keyword
    payload: T


SHARD_SPELLINGS = 8192
"""Most spellings per automaton. Building an automaton holds the GIL from start to end, so a big rule set is
split into a few automatons: a rebuild in a thread then never stalls the event loop for long."""

Entry = tuple[Keyword, tuple[int, ...], T]
Slot = tuple[int, tuple[Entry[T], ...]]
"""What an automaton holds per spelling: its length, and the keywords (with their stretched offsets) it spells."""


@lru_cache(maxsize=1 << 18)
def _slot(length: int, keyword: Keyword, stretched: tuple[int, ...], payload: T) -> Slot[T]:
    # Shared by every build that indexes this keyword: a rebuild then allocates, and a dropped filter frees, hardly
    # any Python objects. Freeing a few hundred thousand at once, or collecting them, would hold the GIL for long.
    return length, ((keyword, stretched, payload),)


@lru_cache(maxsize=1 << 16)
def _merged(prior: Slot[T], slot: Slot[T]) -> Slot[T]:
    # A spelling of several keywords ("nude" and "nude*"): shared between builds too, for the same reason.
    return prior[0], prior[1] + slot[1]


class KeywordIndex(Generic[T]):
    """Keywords, each with a (hashable) payload, in a few Aho-Corasick automatons of :data:`SHARD_SPELLINGS` each."""

    def __init__(self, keywords: Iterable[tuple[Keyword, T]]) -> None:
        slots: dict[str, Slot[T]] = {}
        for keyword, payload in keywords:
            for spelling, stretched in variants(keyword.body, keyword.stretched):
                slot = _slot(len(spelling), keyword, stretched, payload)
                prior = slots.get(spelling)
                slots[spelling] = slot if prior is None else _merged(prior, slot)
        spellings = list(slots)
        self._automatons = [
            _automaton(slots, spellings[start : start + SHARD_SPELLINGS])
            for start in range(0, len(spellings), SHARD_SPELLINGS)
        ]
        self.size = len(slots)
        """Spellings indexed."""

    def parts(self) -> list[ahocorasick.Automaton]:
        """The automatons, in a new list (see :func:`moderation.filter.release`)."""
        return list(self._automatons)

    def find(self, text: Mapped) -> Iterator[Hit[T]]:
        """Every keyword occurrence in normalised ``text`` that respects its word boundaries."""
        for automaton in self._automatons:
            yield from self._find(automaton, text)

    @staticmethod
    def _find(automaton: ahocorasick.Automaton, text: Mapped) -> Iterator[Hit[T]]:
        for last, (length, entries) in automaton.iter(text.text):
            start, end = last - length + 1, last + 1
            for keyword, stretched, payload in entries:
                if keyword.word_start and not text.is_boundary(start):
                    continue
                if keyword.word_end and not text.is_boundary(end):
                    continue
                if any(not text.mark(start + offset) & STRETCHED for offset in stretched):
                    continue
                yield Hit(start, end, keyword, payload)


def _automaton(slots: dict[str, Slot[T]], spellings: list[str]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for spelling in spellings:
        automaton.add_word(spelling, slots[spelling])
    automaton.make_automaton()
    return automaton


# How RE2 refuses lookaround and backreferences, the features that need a backtracking engine.
_NEEDS_BACKTRACKING = re.compile(r"invalid perl operator: \(\?<?[=!]|invalid escape sequence: \\[1-9]")
_EMPTY_PROBES = ("", "a", "a b", "1")


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> re2._Regexp:
    """Compile an admin's regex with RE2 (linear time, case-insensitive); raise ``ValueError`` naming the problem."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if isinstance(exc.args[0], bytes) else str(exc.args[0])
        if _NEEDS_BACKTRACKING.search(reason):
            raise ValueError(
                f"pattern can backtrack catastrophically ({reason}): lookaround and backreferences need a "
                "backtracking engine; only linear-time RE2 syntax is allowed"
            ) from None
        raise ValueError(f"pattern does not compile: {reason}") from None
    for probe in _EMPTY_PROBES:
        if any(match.start() == match.end() for match in compiled.finditer(probe)):
            raise ValueError("pattern can match empty text, so it would match every prompt")
    return compiled
