"""Normalise a prompt before matching, remembering where every character came from.

People dodge keyword filters with invisible characters, look-alike letters,
accents, prompt weights, spaced-out and stretched letters, words split by a
mark and leetspeak. Each step below undoes one trick. Every step takes and returns a :class:`Mapped`
text, which keeps, for each character, the span of the original prompt it came
from, so a match in normalised text can be shown in what the member typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from moderation.confusables import CONFUSABLES
from moderation.mapped import I_OR_L, SOFT_BOUNDARY, STRETCHED, Mapped, Piece, map_chars, rewrite

# --- character steps ---------------------------------------------------------------------------

_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # fillers that render as empty space


@lru_cache(maxsize=4096)
def _visible(char: str) -> str:
    if char in _BLANKS:
        return " "
    if char.isspace():
        return char
    if unicodedata.category(char) in ("Cf", "Cc") or "\ufe00" <= char <= "\ufe0f" or char == "\u034f":
        return ""
    return char


def strip_invisible(m: Mapped) -> Mapped:
    """Drop zero-width, format and control characters (ZWSP, joiners, soft hyphen, BOM, variation selectors)."""
    if m.text.isascii() and not _ASCII_CONTROL.search(m.text):
        return m
    return map_chars(m, _visible)


@lru_cache(maxsize=4096)
def _nfkc(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


def nfkc(m: Mapped) -> Mapped:
    """Unicode compatibility folding: fullwidth, mathematical, circled and superscript letters become plain ones."""
    if unicodedata.is_normalized("NFKC", m.text):
        return m
    return map_chars(m, _nfkc)


@lru_cache(maxsize=4096)
def _unaccented(char: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", char) if unicodedata.category(c) not in ("Mn", "Me"))


def strip_accents(m: Mapped) -> Mapped:
    """Drop accents and every other combining mark (``nüdé`` → ``nude``, Zalgo text → plain text)."""
    if m.text.isascii():
        return m
    return map_chars(m, _unaccented)


def fold_confusables(m: Mapped) -> Mapped:
    """Fold letters of other scripts that imitate Latin ones (Cyrillic ѕ, Armenian ս) to the Latin letter."""
    if m.text.isascii():
        return m
    return map_chars(m, lambda char: CONFUSABLES.get(char, char))


# A capital I inside a word with lower-case letters ("bIowjob"; not "Italy"), or a small l among capitals ("NlPPLE"):
# either letter.
_MIXED_CASE_I = re.compile(r"(?<![^\W\d_])(?=[^\W\d_]+I)(?=[^\W\d_]*[a-z])[^\W\d_]+")
_CAPS_WITH_L = re.compile(r"(?<![^\W\d_])(?=[^\W\d_]*l)(?=(?:[^\W\d_]*[A-Z]){2})[A-Z]*l[A-Zl]*(?![^\W\d_])")


def _i_or_l(letter: str) -> Callable[[re.Match[str]], list[Piece]]:
    def pieces(match: re.Match[str]) -> list[Piece]:
        text, start = match.group(), match.start()
        # A capital first letter is just a capital ("Ice"): only one inside the word is in doubt.
        doubtful = [char == letter and (letter == "l" or i > start) for i, char in enumerate(text, start)]
        return [(I_OR_L if doubt else char, i, i + 1, 0) for i, (char, doubt) in enumerate(zip(text, doubtful), start)]

    return pieces


def read_i_as_l(m: Mapped) -> Mapped:
    """Read a capital ``I`` inside a word with lower-case letters, and an ``l`` in a capitalised word, as
    :data:`I_OR_L`.

    In most fonts they look the same, so ``bIowjob`` may be ``blowjob`` and ``NlPPLE`` ``NIPPLE``.
    """
    if "I" in m.text:
        m = rewrite(m, _MIXED_CASE_I, _i_or_l("I"))
    if "l" in m.text:
        m = rewrite(m, _CAPS_WITH_L, _i_or_l("l"))
    return m


def casefold(m: Mapped) -> Mapped:
    """Case-insensitive form (``ß`` → ``ss``)."""
    if m.text.isascii():
        return Mapped(m.text.lower(), m.starts, m.ends, m.marks)
    return map_chars(m, str.casefold)


# --- rewriting steps ---------------------------------------------------------------------------

# Weights like "(word:1.4)" and "[a:b:0.5]", then the brackets and alternation bars of (emphasis),
# [de-emphasis|alternation], {NovelAI}, <lora:x>. A number after a colon elsewhere ("code: 4242") stays.
_PROMPT_SYNTAX = re.compile(r":\s*+[+-]?(?>\d+(?:\.\d*)?|\.\d+)(?=\s*[)\]>])|[()\[\]{}<>|]")


def strip_prompt_syntax(m: Mapped) -> Mapped:
    """Remove Stable Diffusion prompt syntax: ``(word:1.4)``, ``((word))``, ``[a|b]`` become plain words."""
    return rewrite(m, _PROMPT_SYNTAX, lambda match: [(" ", match.start(), match.end(), 0)])


# One hyphen, underscore, dot, apostrophe or asterisk between letters, or one to three letters in brackets
# (not digits: "1.2" is a number, and leetspeak is decoded later).
_SPLIT_WORD = re.compile(r"(?<=[^\W\d_])(?:[-_.'’*]|[(\[{](?P<inner>[^\W\d_]{1,3})[)\]}])(?=[^\W\d_])")


def join_split_words(m: Mapped) -> Mapped:
    """Join a word split by one mark to dodge a filter: ``nu-de``, ``nu_de``, ``n(u)de`` become ``nude``.

    Innocent compounds are joined too (``x-ray``, ``spider-man``), so this runs
    on a second view of the prompt, beside the one that keeps them apart.
    """
    return rewrite(
        m,
        _SPLIT_WORD,
        lambda match: [(char, i, i + 1, 0) for i, char in enumerate(match.group("inner") or "", match.start("inner"))],
    )


# Three or more single letters or digits, separated by spaces, or by marks mixed at will ("n.u-d_e", spaces allowed
# around each mark).
_SPACED_OUT = re.compile(
    r"(?<![^\W_])[^\W_](?:(?:[ \t]+[^\W_]){2,}|(?:[ \t]*[._\-~*/\\•·][ \t]*[^\W_]){2,})(?![^\W_])"
)
# One-letter words that may stand before or after a spaced-out word. Not a trailing "a": "p i z z a", "s p i c a".
_WORD_BEFORE, _WORD_AFTER = frozenset("aAiI"), frozenset("iI")


def _joined_letters(match: re.Match[str]) -> list[Piece]:
    letters = [(char, i) for i, char in enumerate(match.group(), match.start()) if char.isalnum()]
    # "a n u d e": the one-letter word before (or after) the run is joined too, so a word may also begin after it.
    soft = {1} if letters[0][0] in _WORD_BEFORE else set()
    soft |= {len(letters) - 1} if letters[-1][0] in _WORD_AFTER else set()
    return [(char, i, i + 1, SOFT_BOUNDARY if n in soft else 0) for n, (char, i) in enumerate(letters)]


def join_spaced_letters(m: Mapped) -> Mapped:
    """Join letters spaced out to dodge a filter: ``n u d e``, ``n.u.d.e``, ``n_u-d.e`` become ``nude``.

    A one-letter word at either end of the run (``a n u d e``) is joined too, so
    a word may also begin after it or end before it.
    """
    return rewrite(m, _SPACED_OUT, _joined_letters)


_LEET = {
    "0": "o", "1": I_OR_L, "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "€": "e", "!": "i", "+": "t",
}  # fmt: skip
_INNER_ONLY = frozenset("!+")  # "nude!" ends a sentence; "n!pple" hides a letter
# A whole word (letters, digits, leet symbols) with at least one digit or symbol in it.
_WORD_WITH_SYMBOLS = re.compile(r"(?<![^\W_])(?<![@$€!+])[^\W\d_]*[\d@$€!+](?:[^\W_]|[@$€!+])*")
# Numbers with a unit or a size: not leetspeak, left alone.
_NUMBER_WITH_UNIT = re.compile(r"\d+(?:x\d+)*(?:k|p|px|mm|cm|m|fps|s|st|nd|rd|th|d|x|yo|hz|mp|am|pm|gb|mb)?")
_DIGITS = "0123456789"


def _between_letters(word: str, i: int) -> bool:
    return 0 < i < len(word) - 1 and word[i - 1].isalnum() and word[i + 1].isalnum()


def _decode_word(m: Mapped, match: re.Match[str]) -> list[Piece] | None:
    word, offset = match.group(), match.start()
    decodable = [
        _LEET.get(char) if char not in _INNER_ONLY or _between_letters(word, i) else None for i, char in enumerate(word)
    ]
    if not any(decodable) or not any(char.isalpha() for char in word) or _NUMBER_WITH_UNIT.fullmatch(word):
        return None
    # A count before a word or a number after it ("2nude", "nude2") may also be just that: let a word start there.
    lead = len(word) - len(word.lstrip(_DIGITS))
    trail = len(word) - len(word.rstrip(_DIGITS))
    soft = {i for i in (lead, len(word) - trail) if 0 < i < len(word)}
    return [
        (decoded or char, offset + i, offset + i + 1, (SOFT_BOUNDARY if i in soft else 0) | m.mark(offset + i))
        for i, (char, decoded) in enumerate(zip(word, decodable, strict=True))
    ]


def decode_leetspeak(m: Mapped) -> Mapped:
    """Decode leetspeak in words that mix letters with digits or symbols: ``s3x``, ``p0rn``, ``@ss`` (not ``4k``)."""
    return rewrite(m, _WORD_WITH_SYMBOLS, lambda match: _decode_word(m, match))


_SEPARATORS = re.compile(r"[\W_]{2,}|[^\w ]|_")


def collapse_separators(m: Mapped) -> Mapped:
    """Turn every run of punctuation and spacing into one space, so phrases match however they are typed."""
    return rewrite(m, _SEPARATORS, lambda match: [(" ", match.start(), match.end(), 0)])


_STRETCHED_RUN = re.compile(r"([^\W\d_])\1{2,}")


def squeeze_stretched(m: Mapped) -> Mapped:
    """Squeeze a letter repeated three or more times to one, marked :data:`STRETCHED` (``nuuuude`` → ``nude``)."""
    return rewrite(
        m,
        _STRETCHED_RUN,
        lambda match: [(match.group(1), match.start(), match.end(), STRETCHED | m.mark(match.start()))],
    )


Step = Callable[[Mapped], Mapped]

PREPARE_STEPS: tuple[Step, ...] = (strip_invisible, nfkc)
"""What every check sees, personal-information detection included."""
FOLD_STEPS: tuple[Step, ...] = (strip_accents, fold_confusables, read_i_as_l, casefold)
"""Letter by letter folding, after :data:`PREPARE_STEPS`."""
WORD_STEPS: tuple[Step, ...] = (
    strip_prompt_syntax,
    join_spaced_letters,
    decode_leetspeak,
    collapse_separators,
    squeeze_stretched,
)
"""Rewrites of words and what lies between them, after :data:`FOLD_STEPS`."""


def apply(steps: Sequence[Step], m: Mapped) -> Mapped:
    """Run ``steps`` in order."""
    for step in steps:
        m = step(m)
    return m


def match_views(prepared: Mapped) -> list[Mapped]:
    """The texts rules are matched against, from a prompt after :data:`PREPARE_STEPS`.

    The normalised prompt and, when it splits a word with one mark
    (:func:`join_split_words`), the normalised prompt with such words joined.
    """
    folded = apply(FOLD_STEPS, prepared)
    joined = join_split_words(folded)
    views = [apply(WORD_STEPS, folded)]
    if joined is not folded:
        views.append(apply(WORD_STEPS, joined))
    return views


def normalise(text: str) -> Mapped:
    """The fully normalised form of ``text`` (the first of its :func:`match_views`), as keywords are stored."""
    return apply(WORD_STEPS, apply(FOLD_STEPS, apply(PREPARE_STEPS, Mapped.of(text))))
