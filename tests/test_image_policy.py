"""The image policy's bands with scores forced by hand: no engine, no Discord."""

from __future__ import annotations

import re

import pytest

from bot.guild_settings import GuildSettingsStore
from bot.image_policy import Bands, ImageDecision, decide
from bot.settings import ConfigError, Settings, parse_settings
from engine.types import GeneratedImage, SafetyVerdict

BANDS = Bands(allow_below=0.25, block_at=0.5)


def images(*scores: float | None) -> list[GeneratedImage]:
    """Images with forced scores (None: not checked)."""
    return [GeneratedImage(seed, b"", None if score is None else SafetyVerdict.from_score(score, "forced"))
            for seed, score in enumerate(scores)]  # fmt: skip


def test_each_band_and_its_edges() -> None:
    assert [BANDS.action(score) for score in (0.0, 0.2499, 0.25, 0.4999, 0.5, 1.0)] == [
        "allow", "allow", "review", "review", "block", "block",
    ]  # fmt: skip
    assert Bands(0.5, 0.5).action(0.5) == "block" and Bands(0.5, 0.5).action(0.49) == "allow"  # no review band


def test_a_grid_goes_by_its_highest_score_and_unchecked_images_pass() -> None:
    assert decide(images(), BANDS) is None
    assert decide(images(None, None), BANDS) is None
    assert decide(images(0.1, 0.2), BANDS) is None
    assert decide(images(0.1, 0.3, None), BANDS) == ImageDecision("review", SafetyVerdict("ok", 0.3, "forced"))
    assert decide(images(0.3, 0.9, 0.1), BANDS) == ImageDecision("block", SafetyVerdict("flagged", 0.9, "forced"))


def test_nsfw_channels_keep_the_ordinary_bounds_they_do_not_override() -> None:
    assert BANDS.overridden(None, None) == BANDS
    assert BANDS.overridden(None, 0.9) == Bands(0.25, 0.9)


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"allow_below": 0.8, "block_at": 0.6}, "allow_below (0.8) must not be above block_at (0.6)"),
        ({"nsfw_allow_below": 0.7}, "nsfw_allow_below (0.7) must not be above nsfw_block_at (0.5)"),
        ({"block_at": 1.5}, "block_at: Input should be less than or equal to 1"),
    ],
)
def test_bad_bands_are_refused_at_start_naming_the_key(policy: dict[str, float], problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"image_policy.*{re.escape(problem)}"):
        parse_settings({"image_policy": policy}, env={})


def test_the_config_gives_every_servers_bands() -> None:
    settings = Settings.model_validate({"image_policy": {"allow_below": 0.1, "block_at": 0.7, "nsfw_block_at": 0.9}})
    server = GuildSettingsStore(None, settings).effective(42)  # type: ignore[arg-type]  # defaults need no database
    assert server.image_bands(nsfw=False) == Bands(0.1, 0.7)
    assert server.image_bands(nsfw=True) == Bands(0.1, 0.9)
