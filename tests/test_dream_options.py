"""``/dream``'s options: explicit > ``/settings`` default > config; aspect ratios to sizes; styles; models."""

from __future__ import annotations

import pytest

from bot.aspect import ASPECTS, aspect_size
from bot.dream_options import Asked, Context, resolve
from bot.preferences import Preferences, check_preferences
from bot.refusal import Refusal
from bot.settings import ConfigError, parse_settings
from bot.styles import Style
from engine.types import Limits, RequestError

LIMITS = Limits(models=("anime",))
CONTEXT = Context(LIMITS, max_pixels=768 * 768, default_count=4, default_sampler="euler")
STYLES = {"oil": Style("oil", "{prompt}, oil painting", "blurry"), "mine": Style("mine", "a {prompt} drawing", own=True)}


def test_every_ratio_is_near_the_native_area_in_multiples_of_64_and_close_to_its_ratio() -> None:
    for aspect, (across, down) in ASPECTS.items():
        width, height = aspect_size(aspect, LIMITS, 768 * 768)
        assert width % 64 == 0 and height % 64 == 0
        assert 0.8 * 512 * 512 <= width * height <= 1.1 * 512 * 512
        assert abs(width / height / (across / down) - 1) <= 0.1
    assert aspect_size("16:9", LIMITS, 768 * 768) == (704, 384)


def test_a_small_tier_gets_a_smaller_size_or_a_refusal_naming_aspect() -> None:
    width, height = aspect_size("16:9", LIMITS, 100_000)
    assert width * height <= 100_000 and width % 8 == 0 and height % 8 == 0
    with pytest.raises(RequestError) as refused:
        aspect_size("16:9", LIMITS, 64 * 64)
    assert refused.value.field == "aspect" and "4,096 pixels" in refused.value.message
    assert aspect_size("1:1", LIMITS, 64 * 64) == (64, 64)
    with pytest.raises(RequestError, match="cannot be made"):
        aspect_size("16:9", Limits(min_size=448), 768 * 768)


def test_an_option_given_wins_over_a_preference_which_wins_over_the_default() -> None:
    prefs = Preferences(steps=30, sampler="ddim", count=2, negative="text", mode="relax", width=640, height=448)
    plain = resolve(Asked("a cat"), Preferences(), {}, CONTEXT)
    assert (plain.params.steps, plain.params.sampler, plain.count, plain.mode, plain.negative) == (
        25, "euler", 4, "fast", "")
    assert (plain.params.width, plain.params.height) == (512, 512)
    preferred = resolve(Asked("a cat"), prefs, {}, CONTEXT)
    assert (preferred.params.steps, preferred.params.sampler, preferred.count, preferred.mode) == (30, "ddim", 2, "relax")
    assert (preferred.params.width, preferred.params.height, preferred.negative) == (640, 448, "text")
    given = resolve(Asked("a cat", negative="dogs", steps=12, mode="fast", count=1, aspect="9:16"), prefs, {}, CONTEXT)
    assert (given.params.steps, given.mode, given.count, given.negative) == (12, "fast", 1, "dogs")
    assert (given.params.width, given.params.height) == (384, 704)  # an aspect given wins over a default size


def test_width_and_height_given_win_over_a_default_aspect_and_a_mix_is_refused() -> None:
    prefs = Preferences(aspect="16:9")
    assert resolve(Asked("a cat"), prefs, {}, CONTEXT).params.width == 704
    sized = resolve(Asked("a cat", width=768), prefs, {}, CONTEXT).params
    assert (sized.width, sized.height) == (768, 512)
    with pytest.raises(RequestError) as mixed:
        resolve(Asked("a cat", width=768, aspect="1:1"), Preferences(), {}, CONTEXT)
    assert mixed.value.field == "aspect" and "not both" in mixed.value.message
    small = Context(LIMITS, max_pixels=64 * 64, default_count=1, default_sampler="euler")
    with pytest.raises(RequestError, match=r"your /settings default"):
        resolve(Asked("a cat"), prefs, {}, small)


def test_a_style_wraps_the_prompt_and_adds_its_negative() -> None:
    styled = resolve(Asked("a cat", negative="dogs", style="oil"), Preferences(), STYLES, CONTEXT)
    assert (styled.prompt, styled.negative, styled.style) == ("a cat, oil painting", "dogs, blurry", "oil")
    default = resolve(Asked("a cat"), Preferences(style="mine"), STYLES, CONTEXT)
    assert (default.prompt, default.negative, default.style) == ("a a cat drawing", "", "mine")
    unstyled = resolve(Asked("a cat", style="none"), Preferences(style="mine"), STYLES, CONTEXT)
    assert (unstyled.prompt, unstyled.style) == ("a cat", "")
    with pytest.raises(Refusal, match=r"\*\*style\*\*: there is no style `ink` here; the styles are: `oil`, `mine`"):
        resolve(Asked("a cat", style="ink"), Preferences(), STYLES, CONTEXT)
    with pytest.raises(Refusal, match="It is your `/settings` default"):
        resolve(Asked("a cat"), Preferences(style="gone"), STYLES, CONTEXT)


def test_models_are_the_default_and_the_configured_ones() -> None:
    assert resolve(Asked("a cat", model="default"), Preferences(), {}, CONTEXT).params.model == ""
    assert resolve(Asked("a cat", model="anime"), Preferences(), {}, CONTEXT).params.model == "anime"
    with pytest.raises(RequestError) as unknown:
        resolve(Asked("a cat", model="photo"), Preferences(), {}, CONTEXT)
    assert unknown.value.field == "model" and "default, anime" in unknown.value.message


def test_a_default_size_and_a_default_aspect_replace_each_other() -> None:
    prefs = Preferences(width=640, height=448).updated({"aspect": "3:2", "steps": None})
    assert (prefs.aspect, prefs.width, prefs.height, prefs.steps) == ("3:2", None, None, None)
    assert prefs.updated({"width": 768}) == Preferences(width=768)
    with pytest.raises(RequestError, match="multiple of 8") as bad:
        check_preferences(Preferences(width=500), LIMITS)
    assert bad.value.field == "width"
    with pytest.raises(RequestError) as many:
        check_preferences(Preferences(count=10), LIMITS)
    assert many.value.field == "count"


def test_a_config_style_without_its_placeholder_fails_at_start_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"styles\.oil\.prompt: .*must contain \{prompt\}"):
        parse_settings({"styles": {"oil": {"prompt": "oil painting"}}}, env={})
    with pytest.raises(ConfigError, match=r"styles: .*style name 'Oil Paint'"):
        parse_settings({"styles": {"Oil Paint": {"prompt": "{prompt}, oil"}}}, env={})
    settings = parse_settings({"styles": {"oil": {"prompt": "{prompt}, oil", "negative": "blurry"}}}, env={})
    assert settings.styles["oil"].negative == "blurry"
