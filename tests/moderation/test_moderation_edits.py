"""Live rule edits as data: compaction, applying many at once, and what cannot be applied."""

from __future__ import annotations

import pytest

from moderation import FilterSettings, PromptFilter, RuleError
from moderation.edits import Edit, RuleList, compact, edited


def add(category: str, rule: str, into: RuleList = "keywords") -> Edit:
    return Edit(True, category, into, rule)


def remove(category: str, rule: str, into: RuleList = "keywords") -> Edit:
    return Edit(False, category, into, rule)


def settings(**categories: dict) -> FilterSettings:
    return FilterSettings.model_validate({"default_rules": False, "categories": categories, "pii": {"kinds": []}})


def test_compact_keeps_each_rules_last_edit_in_order() -> None:
    edits = [remove("a", "x"), add("a", "y"), add("a", "x"), add("a", "y"), add("b", "x"), add("a", "x", "allow")]
    assert compact(edits) == [add("a", "x"), add("a", "y"), add("b", "x"), add("a", "x", "allow")]


def test_compact_of_adds_and_removes_of_one_rule_keeps_at_most_two() -> None:
    assert compact([add("a", "x"), remove("a", "x")] * 25) == [add("a", "x"), remove("a", "x")]
    assert compact([remove("a", "x"), add("a", "x")] * 25 + [remove("a", "x")]) == [add("a", "x"), remove("a", "x")]
    assert compact([remove("a", "x")] * 3) == [remove("a", "x")]


def test_many_edits_give_the_rules_that_one_by_one_would() -> None:
    base = settings(test={"keywords": ["boom"]})
    edits = [add("test", f"word{i}") for i in range(30)] + [remove("test", f"word{i}") for i in range(0, 30, 2)]
    one_by_one = PromptFilter(base)
    for edit in edits:
        one_by_one = one_by_one.with_rule(edit.category, edit.rule) if edit.add else one_by_one.without_rule(
            edit.category, edit.rule
        )
    assert edited(base, compact(edits)) == one_by_one.settings
    assert PromptFilter(edited(base, edits)).check("word3").category == "test"
    assert PromptFilter(edited(base, edits)).check("word2").allowed


def test_an_edit_that_cannot_be_made_is_skipped_or_raised() -> None:
    base = settings(test={"keywords": ["boom"]})
    skipped: list[RuleError] = []
    result = edited(base, [remove("test", "pow"), add("test", "bang"), add("test", "wo*rd")], skipped.append)
    assert result.categories["test"].keywords == ("boom", "bang")
    assert [str(error) for error in skipped] == [
        "test has no keywords entry 'pow'",
        "'*' is allowed only at the start or end of a keyword",
    ]
    with pytest.raises(RuleError, match="no keywords entry 'pow'"):
        edited(base, [remove("test", "pow")])


def test_an_emptied_category_is_removed_with_its_negative_prompt_check() -> None:
    base = FilterSettings.model_validate(
        {"default_rules": False, "categories": {"fruit": {"keywords": ["durian"]}, "veg": {"keywords": ["kale"]}},
         "negative_categories": ["fruit", "veg"]}
    )  # fmt: skip
    after = edited(base, [remove("fruit", "durian")])
    assert "fruit" not in after.categories and after.negative_categories == ("veg",)
    assert PromptFilter(base).without_categories(["veg"]).settings.negative_categories == ("fruit",)


def test_an_emptied_category_leaves_the_age_restricted_channels_categories() -> None:
    base = FilterSettings.model_validate(
        {"default_rules": False, "categories": {"fruit": {"keywords": ["durian"]}, "veg": {"keywords": ["kale"]}},
         "nsfw_prompt_categories": ["fruit", "veg"]}
    )  # fmt: skip
    assert edited(base, [remove("fruit", "durian")]).nsfw_prompt_categories == ("veg",)
    assert PromptFilter(base).without_categories(["veg"]).settings.nsfw_prompt_categories == ("fruit",)
