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
from bisect import bisect_right
from dataclasses import dataclass

from moderation.normalise import Mapped
from moderation.words import COMMON_WORDS

_LETTERS = re.compile(r"[^\W\d_]+")
MAX_PAIR_CHARS = 24
"""Longest pair of words joined: banned words are short."""
MAX_LEFT_OVER = 3
"""Letters of the pair a keyword may leave uncovered at either end (a plural, "-ed", "-ing")."""


@dataclass(frozen=True, slots=True)
class Rejoined:
    """Every candidate pair joined, one after another with a space between, to be searched in one pass."""

    text: Mapped
    pairs: list[tuple[int, int, int]]
    """Each pair's start, join and end in ``text``, in order."""

    def covers_join(self, start: int, end: int) -> bool:
        """Whether a match at ``[start, end)`` crosses its pair's join and leaves little of the pair over."""
        pair_start, join, pair_end = self.pairs[bisect_right(self.pairs, (start, len(self.text.text))) - 1]
        return (start < join < end <= pair_end and start - pair_start <= MAX_LEFT_OVER
                and pair_end - end <= MAX_LEFT_OVER)  # fmt: skip


def rejoined(text: Mapped, prompt: str) -> Rejoined | None:
    """The pairs of neighbouring non-words in normalised ``text`` joined, or None when it has none."""
    words = list(_LETTERS.finditer(text.text))
    pieces: list[str] = []
    indices: list[int] = []  # in ``text``, of each character of the joined pairs (the space takes its left's)
    pairs: list[tuple[int, int, int]] = []
    for first, second in zip(words, words[1:], strict=False):
        left, right = first.group(), second.group()
        if left in COMMON_WORDS or right in COMMON_WORDS or len(left) + len(right) > MAX_PAIR_CHARS:
            continue
        gap = prompt[text.ends[first.end() - 1] : text.starts[second.start()]]
        if not gap or not gap.isspace():
            continue
        if pieces:
            pieces.append(" ")
            indices.append(indices[-1])
        start = len(indices)
        pieces += (left, right)
        indices += [*range(first.start(), first.end()), *range(second.start(), second.end())]
        pairs.append((start, start + len(left), len(indices)))
    if not pairs:
        return None
    joined = Mapped(
        "".join(pieces),
        [text.starts[i] for i in indices],
        [text.ends[i] for i in indices],
        {n: text.marks[i] for n, i in enumerate(indices) if i in text.marks},
    )
    return Rejoined(joined, pairs)
