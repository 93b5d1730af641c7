"""Each normalisation step on its own, and the mapping back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.normalise import (
    I_OR_L,
    SOFT_BOUNDARY,
    STRETCHED,
    Mapped,
    casefold,
    collapse_separators,
    decode_leetspeak,
    fold_confusables,
    join_spaced_letters,
    join_split_words,
    match_views,
    nfkc,
    normalise,
    read_i_as_l,
    squeeze_stretched,
    strip_accents,
    strip_invisible,
    strip_prompt_syntax,
)


def run(step, text: str) -> str:
    return step(Mapped.of(text)).text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nu\u200bde", "nude"),  # zero-width space
        ("na\u00adked", "naked"),  # soft hyphen
        ("a\u200db\u200cc\u2060d\ufeff", "abcd"),  # joiners, word joiner, BOM
        ("x\ufe0fy\u034fz", "xyz"),  # variation selector, combining grapheme joiner
        ("a\x07b", "ab"),  # control character
        ("n\u2800u", "n u"),  # braille blank renders as a space
        ("tab\tand\nline", "tab\tand\nline"),  # real whitespace stays
    ],
)
def test_strip_invisible(text: str, expected: str) -> None:
    assert run(strip_invisible, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ｎｕｄｅ", "nude"), ("𝐧𝐮𝐝𝐞", "nude"), ("ⓝⓤⓓⓔ", "nude"), ("ﬁne", "fine"), ("x²", "x2"), ("a\u00a0b", "a b")],
)
def test_nfkc(text: str, expected: str) -> None:
    assert run(nfkc, text) == expected


@pytest.mark.parametrize(("text", "expected"), [("nüdé", "nude"), ("n̸u̸d̸e̸", "nude"), ("Ça", "Ca"), ("ñ", "n")])
def test_strip_accents(text: str, expected: str) -> None:
    assert run(strip_accents, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ѕех", "sex"), ("nսde", "nude"), ("ΡΟRΝ", "poRn"), ("🇳🇺🇩🇪", "nude"), ("ᴘᴏʀɴ", "porn"), ("łøve", "love")],
)
def test_fold_confusables(text: str, expected: str) -> None:
    assert run(fold_confusables, text) == expected


def test_fold_confusables_leaves_latin_alone() -> None:
    assert run(fold_confusables, "plain latin text 123") == "plain latin text 123"


@pytest.mark.parametrize(("text", "expected"), [("NuDe", "nude"), ("STRASSE ß", "strasse ss"), ("ΣΑ", "σα")])
def test_casefold(text: str, expected: str) -> None:
    assert run(casefold, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(nude:1.4)", "nude"),
        ("((word))", "word"),
        ("[a|b]", "a b"),
        ("{{x}}", "x"),
        ("<lora:style:0.8>", "lora:style"),
        ("[cat:dog:0.5]", "cat:dog"),
    ],
)
def test_strip_prompt_syntax(text: str, expected: str) -> None:
    assert run(strip_prompt_syntax, text).split() == expected.split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n u d e", "nude"),
        ("n.u.d.e girl", "nude girl"),
        ("n_u_d_e", "nude"),
        ("n - u - d - e", "nude"),
        ("s 3 x", "s3x"),
        ("a b", "a b"),  # two letters are not a spelled-out word
        ("I'm a cat", "I'm a cat"),  # different separators
        ("n.u-d_e", "nude"),  # marks mixed within one word
        ("n.u d.e", "n.u d.e"),  # a mark, then a space: two runs (left to the split-word join)
        ("n~u/d•e", "nude"),
        ("1.5, 2 and 3", "1.5, 2 and 3"),  # a number and a count are not a spelled-out word
    ],
)
def test_join_spaced_letters(text: str, expected: str) -> None:
    assert run(join_spaced_letters, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nu-de", "nude"),
        ("nu_de po.rn", "nude porn"),
        ("po'rn se*x", "porn sex"),
        ("n(u)de s[e]x", "nude sex"),
        ("x-ray", "xray"),  # innocent compounds too: this is a second view
        ("a - b", "a - b"),  # a mark between words is not inside one
        ("nu--de", "nu--de"),
        ("n(ude)", "n(ude)"),
    ],
)
def test_join_split_words(text: str, expected: str) -> None:
    assert run(join_split_words, text) == expected


def test_one_letter_word_before_or_after_a_spaced_run_may_stand_apart() -> None:
    joined = join_spaced_letters(Mapped.of("a n u d e"))
    assert joined.text == "anude" and joined.is_boundary(1) and not joined.is_boundary(2)
    trailing = join_spaced_letters(Mapped.of("p o r n i"))
    assert trailing.text == "porni" and trailing.is_boundary(4)
    assert not join_spaced_letters(Mapped.of("p i z z a")).is_boundary(4)  # no trailing "a": "pizza" is one word


@pytest.mark.parametrize(
    ("text", "expected"),
    [("bIowjob", f"b{I_OR_L}owjob"), ("NlPPLE", f"N{I_OR_L}PPLE"), ("I am Ice", "I am Ice"), ("ILL", "ILL"),
     ("McIntosh", f"Mc{I_OR_L}ntosh")],
)
def test_capital_i_and_small_l_read_as_either(text: str, expected: str) -> None:
    assert run(read_i_as_l, text) == expected


def test_match_views_add_the_joined_view_only_when_a_word_is_split() -> None:
    assert [view.text for view in match_views(Mapped.of("a cat"))] == ["a cat"]
    [apart, joined] = match_views(Mapped.of("Nu-de (cat:1.2)"))
    assert (apart.text, joined.text) == ("nu de cat ", "nude cat ")
    assert joined.origin(0, 4) == (0, 5)  # the joined word maps back to what was typed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s3x", "sex"),
        ("p0rn", "porn"),
        ("@ss", "ass"),
        ("$exy", "sexy"),
        ("n!pple", "nipple"),
        ("k1ll", f"k{I_OR_L}ll"),
        ("nude!", "nude!"),  # punctuation at the end is punctuation
        ("wow!!", "wow!!"),
        ("4155550132", "4155550132"),  # numbers alone are numbers
        ("512x768", "512x768"),  # sizes
        ("4k 1080p 35mm 1990s 3d", "4k 1080p 35mm 1990s 3d"),  # units
    ],
)
def test_decode_leetspeak(text: str, expected: str) -> None:
    assert run(decode_leetspeak, text) == expected


def test_leetspeak_marks_where_a_counted_word_begins() -> None:
    decoded = decode_leetspeak(Mapped.of("2nude"))
    assert decoded.text == "znude"
    assert decoded.mark(1) & SOFT_BOUNDARY
    assert decoded.is_boundary(1) and not decoded.is_boundary(2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a, b", "a b"), ("a_b", "a b"), ("x -- y", "x y"), ("one two", "one two"), ("end!", "end ")],
)
def test_collapse_separators(text: str, expected: str) -> None:
    assert run(collapse_separators, text) == expected


def test_squeeze_stretched_marks_squeezed_letters() -> None:
    squeezed = squeeze_stretched(Mapped.of("nuuuude boobs 1000"))
    assert squeezed.text == "nude boobs 1000"  # doubles and digits stay
    assert squeezed.mark(1) & STRETCHED
    assert not squeezed.mark(6) & STRETCHED
    assert squeezed.origin(0, 4) == (0, 7)


def test_full_pipeline_and_mapping() -> None:
    prompt = "a ((Ｎ.ü.d.3:1.2)) elf"
    normalised = normalise(prompt)
    assert normalised.text == "a nude elf"
    start = normalised.text.index("nude")
    begin, end = normalised.origin(start, start + 4)
    assert prompt[begin:end] == "Ｎ.ü.d.3"


@given(st.text(max_size=60))
def test_mapping_always_points_inside_the_original(text: str) -> None:
    normalised = normalise(text)
    assert len(normalised.starts) == len(normalised.ends) == len(normalised.text)
    for i in range(len(normalised.text)):
        begin, end = normalised.origin(i, i + 1)
        assert 0 <= begin < end <= len(text)
    assert normalised.starts == sorted(normalised.starts)
