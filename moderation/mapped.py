"""Text that remembers, for each character, the span of the original prompt it came from.

Every normalisation step (:mod:`moderation.normalise`) takes and returns a
:class:`Mapped` text, so a match in normalised text can be shown in what the
member typed; the helpers here build a step's output from its input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

STRETCHED = 1
"""Mark: this letter stands for a run of three or more of it (``nuuuude``)."""
SOFT_BOUNDARY = 2
"""Mark: a word may begin before this character although its neighbour is a letter or digit (``2nude``)."""

I_OR_L = "ı"
"""What leetspeak ``1`` decodes to, since it may stand for ``i`` or ``l``.

Dotless i never survives look-alike folding, so in normalised text it only
ever comes from a ``1``; rules get variants that accept it for either letter.
"""

Piece = tuple[str, int, int, int]
"""One piece of a rewrite: output text, source start, source end (in the step's input), marks."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """Text plus, for each character, the original span ``[starts[i], ends[i])`` it came from."""

    text: str
    starts: list[int]
    ends: list[int]
    marks: dict[int, int] = field(default_factory=dict)
    """:data:`STRETCHED` / :data:`SOFT_BOUNDARY` bits by character index (few characters have any)."""

    @classmethod
    def of(cls, text: str) -> Mapped:
        """The original text, mapped to itself."""
        return cls(text, list(range(len(text))), list(range(1, len(text) + 1)))

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` (non-empty) came from."""
        return self.starts[start], self.ends[end - 1]

    def mark(self, index: int) -> int:
        """The marks of character ``index``."""
        return self.marks.get(index, 0)

    def is_boundary(self, index: int) -> bool:
        """Whether a word may begin or end between ``text[index - 1]`` and ``text[index]``."""
        if index <= 0 or index >= len(self.text):
            return True
        if not (self.text[index - 1].isalnum() and self.text[index].isalnum()):
            return True
        return bool(self.mark(index) & SOFT_BOUNDARY)


class Builder:
    """Assembles a step's output from stretches kept as they were and new pieces."""

    def __init__(self, source: Mapped) -> None:
        self.source = source
        self.text: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.marks: dict[int, int] = {}

    def keep(self, start: int, end: int) -> None:
        """Copy ``source.text[start:end]`` unchanged."""
        source, offset = self.source, len(self.starts) - start
        self.text.append(source.text[start:end])
        self.starts += source.starts[start:end]
        self.ends += source.ends[start:end]
        self.marks.update((i + offset, mark) for i, mark in source.marks.items() if start <= i < end)

    def put(self, text: str, start: int, end: int, mark: int) -> None:
        """Add ``text`` standing for ``source.text[start:end]``, each character marked ``mark``."""
        if mark:
            self.marks.update((i, mark) for i in range(len(self.starts), len(self.starts) + len(text)))
        self.text.append(text)
        self.starts += [self.source.starts[start]] * len(text)
        self.ends += [self.source.ends[end - 1]] * len(text)

    def build(self) -> Mapped:
        return Mapped("".join(self.text), self.starts, self.ends, self.marks)


def map_chars(m: Mapped, fold: Callable[[str], str]) -> Mapped:
    """Replace every character by ``fold(char)`` (zero or more characters) and keep the mapping."""
    folded = [fold(char) for char in m.text]
    if "".join(folded) == m.text:
        return m
    out = Builder(m)
    kept = 0
    for index, (char, piece) in enumerate(zip(m.text, folded, strict=True)):
        if piece != char:  # unchanged stretches are copied whole: most of a long prompt is
            out.keep(kept, index)
            out.put(piece, index, index + 1, m.mark(index))
            kept = index + 1
    out.keep(kept, len(m.text))
    return out.build()


def rewrite(m: Mapped, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], Iterable[Piece] | None]) -> Mapped:
    """Replace each match of ``pattern`` by the pieces ``replace`` returns (None keeps the match)."""
    out = Builder(m)
    kept = 0
    for match in pattern.finditer(m.text):
        pieces = replace(match)
        if pieces is None:
            continue
        out.keep(kept, match.start())
        for piece in pieces:
            out.put(*piece)
        kept = match.end()
    if not kept:  # patterns never match empty text, so nothing was rewritten
        return m
    out.keep(kept, len(m.text))
    return out.build()
