"""Moderation settings: shipped defaults, extension by admins, and bad rules refused at start by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings, parse_settings
from moderation import ModerationSettings, PromptFilter


def refused(moderation: dict) -> str:
    with pytest.raises(ConfigError) as error:
        parse_settings({"moderation": moderation}, env={})
    return str(error.value)


def test_empty_section_ships_default_categories() -> None:
    settings = parse_settings({}, env={}).moderation
    assert settings == ModerationSettings()
    categories = settings.filter.categories
    assert {"sexual", "hate", "violence", "trademark"} <= set(categories)
    assert all(rules.keywords for rules in categories.values())
    assert categories["trademark"].action == "block"  # the terms forbid trademarked material
    assert settings.filter.negative_categories == ()
    assert settings.flags.hide_score >= settings.flags.alert_score


def test_trademark_can_be_set_to_flag() -> None:
    settings = parse_settings(
        {"moderation": {"filter": {"categories": {"trademark": {"action": "flag"}}}}}, env={}
    ).moderation
    verdict = PromptFilter.from_settings(settings).check("pikachu")
    assert (verdict.allowed, verdict.action, verdict.category) == (True, "flag", "trademark")


def test_unknown_negative_category_is_refused_at_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("moderation:\n  filter:\n    negative_categories: [sexual, gossip]\n", "utf-8")
    key = r"moderation\.filter\.negative_categories"
    takes = "takes filter categories of the config: sexual, hate, violence, trademark; not gossip"
    with pytest.raises(ConfigError, match=rf"{config}: {key}: {takes}"):
        load_settings(config, env={})


def test_negative_categories_may_name_an_admin_category() -> None:
    settings = parse_settings(
        {"moderation": {"filter": {"categories": {"fruit": {"keywords": ["durian"]}},
                                   "negative_categories": ["fruit", "violence"]}}}, env={}
    ).moderation  # fmt: skip
    assert settings.filter.negative_checks() == {"hate", "fruit", "violence"}


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (["sexual", "hate"], ("can never allow hate: personal information and hate stay refused in age-restricted "
                              "channels; it takes sexual, violence, trademark")),
        (["pii"], "can never allow pii"),
        (["personal_info"], "can never allow personal_info"),
        (["gossip"], "takes filter categories of the config: sexual, violence, trademark; not gossip"),
    ],
)  # fmt: skip
def test_age_restricted_categories_never_take_hate_or_personal_information(names: list[str], error: str) -> None:
    message = refused({"filter": {"nsfw_prompt_categories": names}})
    assert "moderation.filter.nsfw_prompt_categories" in message and error in message


def test_age_restricted_categories_may_name_an_admin_category() -> None:
    settings = parse_settings(
        {"moderation": {"filter": {"categories": {"gore": {"keywords": ["gore"]}},
                                   "nsfw_prompt_categories": ["sexual", "gore", "sexual"]}}}, env={}
    ).moderation  # fmt: skip
    assert settings.filter.nsfw_prompt_categories == ("sexual", "gore")


def test_admin_category_extends_the_shipped_one() -> None:
    settings = parse_settings(
        {"moderation": {"filter": {"categories": {"trademark": {"keywords": ["acme*"], "action": "flag"}}}}}, env={}
    ).moderation
    trademark = settings.filter.categories["trademark"]
    assert trademark.keywords[0] == "acme*"
    assert "pikachu" in trademark.keywords
    assert trademark.action == "flag"
    assert PromptFilter.from_settings(settings).check("pikachu").allowed is True


def test_admin_category_is_added_and_defaults_can_be_switched_off() -> None:
    settings = parse_settings(
        {"moderation": {"filter": {"default_rules": False, "categories": {"spoilers": {"keywords": ["ending"]}}}}},
        env={},
    ).moderation
    assert list(settings.filter.categories) == ["spoilers"]
    prompt_filter = PromptFilter.from_settings(settings)
    assert prompt_filter.check("nude").allowed
    assert prompt_filter.check("the ending").category == "spoilers"


def test_keyword_that_cannot_compile_is_named() -> None:
    text = refused({"filter": {"categories": {"hate": {"keywords": ["fine", "wo*rd", "!!!"]}}}})
    assert "moderation.filter.categories.hate.keywords[1]: '*' is allowed only at the start or end" in text
    assert "moderation.filter.categories.hate.keywords[2]: keyword has no letters or digits" in text


def test_regex_that_cannot_compile_is_named() -> None:
    text = refused({"filter": {"categories": {"violence": {"regex": ["[unclosed"]}}}})
    assert "moderation.filter.categories.violence.regex[0]: pattern does not compile" in text


@pytest.mark.parametrize("pattern", [r"(\w+)\s+\1", r"(?=admin)\w+", r"(?<!not )nude"])
def test_regex_that_needs_backtracking_is_named(pattern: str) -> None:
    text = refused({"filter": {"categories": {"hate": {"regex": [pattern]}}}})
    assert "moderation.filter.categories.hate.regex[0]: pattern can backtrack catastrophically" in text


def test_regex_matching_empty_text_is_refused() -> None:
    assert "regex[0]: pattern can match empty text" in refused({"filter": {"categories": {"x": {"regex": ["a*"]}}}})


def test_empty_category_is_named() -> None:
    text = refused({"filter": {"categories": {"custom": {"allow": ["fine"]}}}})
    assert "moderation.filter.categories.custom: a category needs at least one keyword or regex" in text


def test_hide_threshold_below_alert_is_named() -> None:
    text = refused({"flags": {"alert_score": 4, "hide_score": 3}})
    assert "moderation.flags.hide_score: must not be below alert_score (4)" in text


@pytest.mark.parametrize(
    ("moderation", "message"),
    [
        (
            {"filter": {"categories": {"personal_info": {"keywords": ["x"]}}}},
            "moderation.filter.categories: 'personal_info' is reserved",
        ),
        ({"filter": {"pii": {"phone_regions": ["XX"]}}}, "moderation.filter.pii.phone_regions: unknown phone region"),
        ({"filter": {"pii": {"kinds": ["dna"]}}}, "moderation.filter.pii.kinds[0]"),
        ({"filter": {"categories": {"x": {"keywords": ["a"], "action": "warn"}}}}, "filter.categories.x.action"),
        ({"flags": {"reasons": []}}, "moderation.flags.reasons: give at least one reason"),
        ({"prompt_log_retention_days": 0}, "moderation.prompt_log_retention_days"),
        ({"filter": {"categories": {"x": {"keywords": ["*a*"]}}}}, "needs at least 3 letters"),
    ],
)
def test_other_bad_values_are_named(moderation: dict, message: str) -> None:
    assert message in refused(moderation)


def test_errors_from_a_yaml_file_name_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("moderation:\n  filter:\n    categories:\n      hate:\n        regex: ['(a)\\1']\n", "utf-8")
    with pytest.raises(ConfigError, match=rf"{config}: moderation\.filter\.categories\.hate\.regex\[0\]: pattern can"):
        load_settings(config, env={})
