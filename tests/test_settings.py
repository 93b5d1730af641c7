"""Settings load once from YAML + environment, reject bad keys by path, and hide the token."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from bot.settings import ConfigError, Settings, changed_keys, is_live, load_settings, parse_settings, with_live

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_is_valid() -> None:
    settings = load_settings(REPO / "config.yaml", env={})
    assert isinstance(settings, Settings)
    assert settings.token is None


def test_empty_config_gives_defaults() -> None:
    assert parse_settings({}, env={}) == Settings()


def test_unknown_key_is_named_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"engine\.max_stepz: Extra inputs are not permitted"):
        parse_settings({"engine": {"max_stepz": 3}}, env={})


def test_bad_value_names_key_and_expectation() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"engine": {"max_steps": "lots"}, "database": {"busy_timeout_ms": -1}}, env={})
    text = str(err.value)
    assert "engine.max_steps: Input should be a valid integer" in text
    assert "database.busy_timeout_ms: Input should be greater than 0" in text


def test_cross_field_rule_names_section() -> None:
    with pytest.raises(ConfigError, match=r"engine: Value error, default_sampler must be one of"):
        parse_settings({"engine": {"default_sampler": "heun9000"}}, env={})


def test_bad_yaml_and_wrong_top_level(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, env={})
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(bad, env={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_token_comes_from_environment_only_and_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    secret = "MTIz.secret-token-value"
    settings = parse_settings({}, env={"DISCORD_TOKEN": secret})
    assert settings.token is not None and settings.token.get_secret_value() == secret
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    assert secret not in repr(settings) and secret not in str(settings)
    assert secret not in caplog.text
    assert secret not in settings.model_dump_json()
    with pytest.raises(ConfigError, match="token: the bot token is read from the DISCORD_TOKEN"):
        parse_settings({"token": secret}, env={})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.engine.max_steps = 3  # type: ignore[misc]


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every settings key as a dotted path, descending into nested sections."""
    keys = set()
    for name, field in model.model_fields.items():
        if name == "token":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _present(data: dict, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def test_shipped_config_documents_every_key_with_its_default() -> None:
    data = yaml.safe_load((REPO / "config.yaml").read_text())
    missing = sorted(key for key in _keys(Settings) if not _present(data, key) and not key.endswith("pii.allow"))
    assert missing == []
    assert load_settings(REPO / "config.yaml", env={}) == Settings()


def test_a_reload_takes_the_live_settings_and_leaves_the_rest_for_a_restart() -> None:
    running = parse_settings({"discord": {"guild_ids": [1]}}, env={})
    edited = parse_settings(
        {
            "discord": {"guild_ids": [2], "dream_channel_ids": [5]},
            "engine": {"max_steps": 60},
            "moderation": {"filter": {"pii": {"action": "flag"}}, "flags": {"alert_score": 1.5}},
        },
        env={},
    )
    changed = changed_keys(running, edited)
    assert changed == [
        "discord.dream_channel_ids", "discord.guild_ids", "engine.max_steps",
        "moderation.filter.pii.action", "moderation.flags.alert_score",
    ]  # fmt: skip
    assert [key for key in changed if is_live(key)] == ["discord.dream_channel_ids", "moderation.filter.pii.action"]
    reloaded = with_live(running, edited)
    assert changed_keys(reloaded, edited) == [key for key in changed if not is_live(key)]
    assert reloaded.discord.guild_ids == (1,) and reloaded.engine == running.engine


@pytest.mark.parametrize("key", ["discord.left_guild_retention_days", "moderation.prompt_log_retention_days"])
@pytest.mark.parametrize("days", [0, -3, 3651])
def test_a_retention_out_of_range_is_refused_with_the_range(key: str, days: int) -> None:
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"{key}: (Value error, )?must be 1 to 3650 days"):
        parse_settings({section: {name: days}}, env={})


def test_servers_served_follow_the_listed_guilds_unless_any() -> None:
    listed = parse_settings({"discord": {"guild_ids": [1, 2]}}, env={}).discord
    assert listed.serves(1) and not listed.serves(3)
    assert parse_settings({"discord": {"guild_ids": [1], "allowed_guilds": "any"}}, env={}).discord.serves(3)
    assert Settings().discord.serves(3)  # no guilds listed: every server is served
    with pytest.raises(ConfigError, match=r"discord\.allowed_guilds: Input should be 'any' or 'listed'"):
        parse_settings({"discord": {"allowed_guilds": "some"}}, env={})


def test_the_operator_and_the_retention_wait_for_a_restart() -> None:
    running = parse_settings({"discord": {"owner_ids": [1]}}, env={})
    edited = parse_settings({"discord": {"owner_ids": [2], "left_guild_retention_days": 9,
                                         "operator_contact": "ops"}}, env={})  # fmt: skip
    changed = changed_keys(running, edited)
    assert [key for key in changed if is_live(key)] == ["discord.operator_contact"]
    reloaded = with_live(running, edited).discord
    assert (reloaded.owner_ids, reloaded.left_guild_retention_days, reloaded.operator_contact) == ((1,), 30, "ops")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("vary_subtle_strength", 0, "greater than 0"),
    ("upscale_strength", 1.5, "less than or equal to 1"),
    ("max_image_bytes", 200 * 2**20, "less than or equal to 104857600"),
])  # fmt: skip
def test_a_bad_controls_key_is_named_with_its_path(key: str, value: float, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"controls\.{key}: Input should be {expected}"):
        parse_settings({"controls": {key: value}}, env={})
