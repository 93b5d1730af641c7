"""Evasions that need two words at once: a banned word split by a space into two non-words ("nu de", "na ked").

Normalisation rewrites one word at a time; joining every pair of neighbouring
words would turn "menu design" into "menudesign". So only neighbours that are
both non-words (not :data:`~moderation.words.COMMON_WORDS`), separated by
nothing but white space in what the member typed, are joined, each pair on its
own, and a keyword counts only when it crosses the join and covers nearly all
of the pair: "nip ples" is "nipples", "be head" and "an al" stay two words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from moderation.normalise import Mapped
from moderation.words import COMMON_WORDS

_LETTERS = re.compile(r"[^\W\d_]+")
MAX_PAIR_CHARS = 24
"""Longest pair of words joined: banned words are short."""
MAX_LEFT_OVER = 3
"""Letters of the pair a keyword may leave uncovered at either end (a plural, "-ed", "-ing")."""


def rejoined(text: Mapped, prompt: str) -> Iterator[tuple[Mapped, int]]:
    """Each pair of neighbouring non-words in normalised ``text`` joined into one, with the offset of the join."""
    words = list(_LETTERS.finditer(text.text))
    for first, second in zip(words, words[1:], strict=False):
        left, right = first.group(), second.group()
        if left in COMMON_WORDS or right in COMMON_WORDS or len(left) + len(right) > MAX_PAIR_CHARS:
            continue
        gap = prompt[text.ends[first.end() - 1] : text.starts[second.start()]]
        if not gap or not gap.isspace():
            continue
        pieces = (range(first.start(), first.end()), range(second.start(), second.end()))
        indices = [i for piece in pieces for i in piece]
        yield Mapped(
            left + right,
            [text.starts[i] for i in indices],
            [text.ends[i] for i in indices],
            {n: text.marks[i] for n, i in enumerate(indices) if i in text.marks},
        ), len(left)


def covers_join(start: int, end: int, join: int, length: int) -> bool:
    """Whether a match at ``[start, end)`` of a joined pair crosses the join and leaves little of the pair over."""
    return start < join < end and start <= MAX_LEFT_OVER and length - end <= MAX_LEFT_OVER
