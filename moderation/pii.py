"""Personal information in prompts: phone numbers, US social security numbers, emails, card numbers, addresses.

Prompts are full of harmless numbers (seeds, years, sizes, step counts, ISBNs),
so a bare run of digits counts only next to a word that says what it is
("call 4155550132", "ssn 219451234"); formatted numbers count on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from phonenumbers import Leniency, PhoneNumberMatcher

PiiKind = Literal["phone", "ssn", "email", "card", "address"]
PII_KINDS: tuple[PiiKind, ...] = ("phone", "ssn", "email", "card", "address")

_WINDOW = 32  # characters before a number searched for a word that says what it is


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """Personal information found at ``text[start:end]``."""

    kind: PiiKind
    start: int
    end: int
    rule: str
    """What recognised it, in words."""


# A number right after one of these is that, not personal information.
_NOT_PII_BEFORE = re.compile(r"\b(?:seeds?|isbn(?:-1[03])?|steps?|cfg|scale|size|id|version|v)\W{0,3}$", re.IGNORECASE)


def _before(text: str, start: int) -> str:
    return text[max(0, start - _WINDOW) : start]


# --- phone numbers -----------------------------------------------------------------------------

# In the languages of the default regions too: German, French, Portuguese (Hindi speakers write English here).
_PHONE_WORDS = re.compile(
    r"\b(?:call|calls|calling|text|texting|txt|phone|tel|telephone|cell|mobile|whatsapp|sms|dial|ring|fax"
    r"|contact|number|hotline|signal|telegram|anrufen|ruf|telefon|handy|nummer|appelle[rz]?|t[ée]l[ée]phone"
    r"|portable|num[ée]ro|ligue|liga|ligar|telefone|celular|n[úu]mero|zap)\b",
    re.IGNORECASE,
)


_LONGEST_PHONE = 32  # characters of the longest written phone number, with its spaces and brackets


def _after_phone_words(text: str) -> Iterator[tuple[int, int]]:
    """The stretches of ``text`` where a number after a phone word may start and end, overlapping ones merged."""
    start = end = -1
    for word in _PHONE_WORDS.finditer(text):
        if word.end() > end:
            if end > start:
                yield start, end
            start = word.end()
        end = word.end() + _WINDOW + _LONGEST_PHONE
    if end > start:
        yield start, min(end, len(text))


def _phones(text: str, regions: Sequence[str]) -> Iterator[PiiMatch]:
    """Numbers valid in one of ``regions``. Counted on their own: international ones, and numbers formatted as in
    the first region. Bare digits, and other regions' national formats (a date like "06 12 2023" is a valid
    number somewhere), count only after a word that says what they are."""
    if sum(map(str.isdigit, text)) < 7:
        return
    # The other regions' numbers count only after a phone word, so only those stretches are searched for them:
    # matching a long prompt in six regions would take longer than everything else.
    searches = [(region, 0, len(text)) for region in regions[:1]]
    searches += [(region, start, end) for start, end in _after_phone_words(text) for region in regions[1:]]
    seen: set[tuple[int, int]] = set()
    for region, offset, stop in searches:
        for match in PhoneNumberMatcher(text[offset:stop], region, leniency=Leniency.VALID):
            start, end = offset + match.start, offset + match.end
            before = _before(text, start)
            if (start, end) in seen or _NOT_PII_BEFORE.search(before):
                continue
            international = match.raw_string.lstrip("(").startswith(("+", "00"))
            formatted = not match.raw_string.isdigit()
            if international or (formatted and region == regions[0]):
                seen.add((start, end))
                yield PiiMatch("phone", start, end, "phone number")
            elif word := _last(_PHONE_WORDS, before):
                seen.add((start, end))
                how = "national format" if formatted else "digits"
                yield PiiMatch("phone", start, end, f"phone number ({how} after '{word}')")


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.findall(text)
    return found[-1] if found else None


# --- US social security numbers ------------------------------------------------------------------

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d-])")
_SSN_WORDS = re.compile(r"\b(?:ssn|ss\s*#|social\s+security|soc\.?\s*sec)", re.IGNORECASE)
_SSN_ADVERTISED = frozenset({"078051120", "219099999", "123456789"})  # printed in ads and samples, never anyone's


def ssn_is_valid(area: str, group: str, serial: str) -> bool:
    """Whether a number could have been issued under the SSA's rules."""
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
        and area + group + serial not in _SSN_ADVERTISED
    )


def _ssns(text: str) -> Iterator[PiiMatch]:
    for match in _SSN.finditer(text):
        area, delimiter, group, serial = match.groups()
        if not ssn_is_valid(area, group, serial):
            continue
        if delimiter == "-":
            yield PiiMatch("ssn", match.start(), match.end(), "US social security number")
        elif word := _last(_SSN_WORDS, _before(text, match.start())):
            yield PiiMatch("ssn", match.start(), match.end(), f"US social security number (after '{word}')")


# --- email addresses -----------------------------------------------------------------------------

_TLDS = r"(?:com|net|org|edu|gov|io|co|me|info|de|uk|fr|ca|au|nl|ru|jp)"
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
_SPELLED_EMAIL = re.compile(
    rf"\b[\w.+-]+\s*(?:[(\[{{]at[)\]}}]|\sat\s)\s*[\w-]+(?:\s*[(\[{{]dot[)\]}}]\s*|\sdot\s|\.){_TLDS}\b", re.IGNORECASE
)


_AT_WORD = re.compile(r"[\s(\[{]at[\s)\]}]", re.IGNORECASE)


def _emails(text: str) -> Iterator[PiiMatch]:
    # The cheap test first: most prompts have neither an "@" nor a word "at".
    if "@" in text:
        for match in _EMAIL.finditer(text):
            yield PiiMatch("email", match.start(), match.end(), "email address")
    if _AT_WORD.search(text):
        for match in _SPELLED_EMAIL.finditer(text):
            yield PiiMatch("email", match.start(), match.end(), "email address (spelled out)")


# --- card numbers --------------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|35|6(?:011|5)")


def luhn_ok(digits: str) -> bool:
    """Whether ``digits`` pass the Luhn checksum that every card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _cards(text: str) -> Iterator[PiiMatch]:
    for match in _CARD.finditer(text):
        number = match.group()
        if _NOT_PII_BEFORE.search(_before(text, match.start())):
            continue
        groups = re.split(r"[ -]", number)
        if len(set(re.findall(r"[ -]", number))) > 1 or min(map(len, groups)) < 3:
            continue  # mixed separators or a list of small numbers: not written like a card
        digits = "".join(groups)
        if not luhn_ok(digits):
            continue
        if len(groups) > 1 or _CARD_ISSUER.match(digits):
            yield PiiMatch("card", match.start(), match.end(), "card number (passes the Luhn check)")


# --- street addresses ----------------------------------------------------------------------------

_STREET_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir"
    "|highway|hwy|parkway|pkwy|square|sq|trail|trl|crescent|cres|close|row|alley|plaza|grove"
)
_ADDRESS = re.compile(
    rf"(?<![\w.,:-])(\d{{1,6}}[a-z]?),?[ ]+((?:[a-z][\w'.-]*[ ]+){{1,3}}?)({_STREET_TYPES})\b\.?", re.IGNORECASE
)
# A house number is followed by a street's name: words like these mean the number counts something else.
_NOT_STREET_NAME = frozenset((
    "a", "an", "the", "of", "on", "in", "at", "to", "by", "with", "and", "or", "for", "from", "near", "down", "up",
    "over", "under", "along", "across", "into", "onto", "past", "behind", "beside", "next", "beneath", "above",
    "below", "is", "are", "was", "were", "my", "your", "his", "her", "their", "our", "its", "this", "that", "these",
    "those", "very", "some", "many", "few", "big", "small", "little", "old", "new",
    *_STREET_TYPES.split("|"),
))  # fmt: skip


# What may follow a street (and its quarter: "NW") to make a mailing address: ", City[, ST] POSTCODE" (a US ZIP,
# a UK postcode) or ", POSTCODE City" (five digits, as in Germany and France).
_CITY = r"[a-z][\w'.-]*(?:[ ][a-z][\w'.-]*){0,2}"
_POSTCODE = r"(?:\d{5}(?:-\d{4})?|[a-z]{1,2}\d[a-z\d]?[ ]?\d[a-z]{2})"
_CITY_AND_POSTCODE = re.compile(
    rf"(?:[ ]+(?:[ns][ew]?|[ew])\.?(?!\w))?,?[ ]+"
    rf"(?:{_CITY},?[ ]+(?:[a-z]{{2}}[ ]+)?{_POSTCODE}|{_POSTCODE}[ ]+[a-z][\w'.-]*)(?!\w)",
    re.IGNORECASE,
)


def _addresses(text: str) -> Iterator[PiiMatch]:
    for match in _ADDRESS.finditer(text):
        names = match.group(2).lower().split()
        if any(name.strip(".'-") in _NOT_STREET_NAME for name in names):
            continue
        # The whole address is one match, so an allow entry for a famous street does not cover it.
        if tail := _CITY_AND_POSTCODE.match(text, match.end()):
            yield PiiMatch("address", match.start(), tail.end(), "mailing address (street, city and postcode)")
        else:
            yield PiiMatch("address", match.start(), match.end(), "street address")


# --- all together --------------------------------------------------------------------------------


def _allow_pattern(allow: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every allow entry, however it is spaced, capitalised or punctuated with commas."""
    phrases = sorted({r"[\s,]+".join(map(re.escape, entry.replace(",", " ").rstrip(".").split())) for entry in allow})
    phrases = [phrase for phrase in phrases if phrase]
    return re.compile(rf"(?<!\w)(?:{'|'.join(phrases)})\.?(?!\w)", re.IGNORECASE) if phrases else None


class PiiDetector:
    """Finds the configured kinds of personal information, except text an allow entry covers entirely."""

    def __init__(self, kinds: Iterable[PiiKind] = PII_KINDS, *, phone_regions: Sequence[str] = ("US",),
                 allow: Iterable[str] = ()) -> None:  # fmt: skip
        self.kinds = frozenset(kinds)
        self.phone_regions = tuple(phone_regions)
        self._allow = _allow_pattern(allow)

    def find(self, text: str) -> list[PiiMatch]:
        """Every piece of personal information in ``text``, in order of position."""
        found: list[PiiMatch] = []
        if "phone" in self.kinds:
            found += _phones(text, self.phone_regions)
        if "ssn" in self.kinds:
            found += _ssns(text)
        if "email" in self.kinds:
            found += _emails(text)
        if "card" in self.kinds:
            found += _cards(text)
        if "address" in self.kinds:
            found += _addresses(text)
        if found and self._allow is not None:
            # An allow entry covers only its own span: "10 Downing Street" is a place, with a postcode an address.
            allowed = [entry.span() for entry in self._allow.finditer(text)]
            found = [match for match in found if not any(a <= match.start and match.end <= b for a, b in allowed)]
        return sorted(found, key=lambda match: match.start)
