"""Evasions beyond one word: split words, look-alike spellings in the index, and the index split into parts."""

from __future__ import annotations

import pytest

from moderation import FilterSettings, PromptFilter
from moderation.evasions import rejoined
from moderation.filter import release
from moderation.normalise import normalise
from moderation.rules import KeywordIndex, parse_keyword, variants


def only(**categories: dict) -> PromptFilter:
    return PromptFilter(
        FilterSettings.model_validate({"default_rules": False, "categories": categories, "pii": {"kinds": []}})
    )


def test_only_neighbouring_non_words_split_by_white_space_are_joined() -> None:
    prompt = "hello na ked, be head nud e"
    pairs = rejoined(normalise(prompt), prompt)
    assert pairs is not None
    assert pairs.text.text == "hellona naked nude"  # not "kedbe" (a comma between) nor "behead" (two words)
    start = pairs.text.text.index("naked")
    assert prompt[slice(*pairs.text.origin(start, start + 5))] == "na ked"
    assert rejoined(normalise("a cat"), "a cat") is None


@pytest.mark.parametrize(
    ("prompt", "category"),
    [("na ked", "test"), ("nak eds", "test"), ("menu design", None), ("xna kedxxxx", None), ("be head", None)],
)
def test_a_keyword_counts_only_across_the_join_covering_nearly_all_the_pair(prompt: str, category: str | None) -> None:
    prompt_filter = only(test={"keywords": ["naked*", "nude", "behead"]})
    assert prompt_filter.check(prompt).category == category


def test_look_alike_spellings_are_indexed_unless_they_are_words() -> None:
    assert dict(variants("nude")).keys() == {"nude", "nvde"}
    assert "rnilf" in dict(variants("milf")) and "vvhore" in dict(variants("whore"))
    assert "burn" not in dict(variants("bum"))  # "burn" is a word of its own
    prompt_filter = only(test={"keywords": ["bum", "milf"]})
    assert prompt_filter.check("burn marks").allowed
    assert prompt_filter.check("rnilf").category == "test"


def test_the_index_split_into_parts_finds_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    keywords = [(parse_keyword(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}"), i) for i in range(50)]
    whole = KeywordIndex(keywords)
    monkeypatch.setattr("moderation.rules.SHARD_SPELLINGS", 7)
    parts = KeywordIndex(keywords)
    assert len(parts.parts()) > len(whole.parts()) == 1
    text = normalise("worddа and wordxb, word")  # 3 (with a Cyrillic a) and 49
    assert sorted(hit.payload for hit in parts.find(text)) == sorted(hit.payload for hit in whole.find(text)) == [3, 49]


def test_release_empties_what_it_is_given() -> None:
    retired = [only(test={"keywords": ["boom"]})]
    release(retired)
    assert retired == []
