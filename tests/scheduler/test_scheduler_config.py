"""Scheduler and quota settings: valid when empty, bad values named by YAML path, admin ranges shared."""

from __future__ import annotations

import pytest

from bot.scheduler.config import LIMIT_NAMES, QuotaSettings, SchedulerSettings, check_limit, check_multiplier
from bot.scheduler.errors import InvalidLimit
from bot.settings import ConfigError, parse_settings


def test_empty_sections_are_valid() -> None:
    settings = parse_settings({}, env={})
    assert settings.scheduler == SchedulerSettings()
    assert list(settings.quotas.tiers) == ["default"]


def test_bad_tier_value_is_reported_by_yaml_path() -> None:
    with pytest.raises(ConfigError, match=r"quotas\.tiers\.supporter\.burst"):
        parse_settings({"quotas": {"tiers": {"default": {}, "supporter": {"burst": -1}}}}, env={})


def test_unknown_key_and_missing_default_tier_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"scheduler\.max_queue"):
        parse_settings({"scheduler": {"max_queue": 3}}, env={})
    with pytest.raises(ConfigError, match="default_tier 'default' is not one of the tiers"):
        parse_settings({"quotas": {"tiers": {"member": {}}}}, env={})


def test_best_tier_is_the_last_listed_match() -> None:
    quotas = QuotaSettings(tiers={"default": {}, "supporter": {"roles": [111, 112]}, "patron": {"roles": [222]}})
    assert quotas.tier_for_roles((), {}) == "default"
    assert quotas.tier_for_roles((111,), {}) == "supporter"
    assert quotas.tier_for_roles((222, 111), {}) == "patron"
    assert quotas.tier_for_roles((333,), {}) == "default"
    server = {"supporter": (333,), "patron": (444,)}  # a server's own roles, on top of the config's
    assert quotas.tier_for_roles((333,), server) == "supporter"
    assert quotas.tier_for_roles((333, 444), server) == "patron"
    assert quotas.tier_for_roles((112,), server) == "supporter"


@pytest.mark.parametrize("role", ["Supporter", "", True, 1.5])
def test_a_tier_role_that_is_not_an_id_fails_at_start_naming_the_key(role: object) -> None:
    with pytest.raises(ConfigError, match=r"quotas\.tiers\.supporter\.roles: .*use the role's id"):
        parse_settings({"quotas": {"tiers": {"default": {}, "supporter": {"roles": [111, role]}}}}, env={})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("burst", -5, "-5 is out of range; allowed range is 1 to 1,000"),
        ("daily_images", 10**9, "1,000,000,000 is out of range; allowed range is 0 to 1,000,000"),
        ("max_images", 2.5, "must be a whole number"),
        ("weight", float("nan"), "must be a number"),
        ("rate_per_hour", True, "must be a number"),
        ("colour", 3, "unknown limit; choose one of burst"),
    ],
)
def test_admin_limits_are_checked_with_the_allowed_range(name: str, value: object, message: str) -> None:
    with pytest.raises(InvalidLimit, match=message) as caught:
        check_limit(name, value)
    assert str(caught.value).startswith(f"{name}: ")


def test_valid_limits_come_back_typed() -> None:
    assert check_limit("burst", 12.0) == 12 and isinstance(check_limit("burst", 12.0), int)
    assert check_limit("weight", 2) == 2.0 and isinstance(check_limit("weight", 2), float)
    assert check_limit("max_queued", None) is None
    assert set(LIMIT_NAMES) >= {"burst", "rate_per_hour", "daily_images", "max_queued", "weight"}


def test_multiplier_range() -> None:
    assert check_multiplier(2) == 2.0
    with pytest.raises(InvalidLimit, match="allowed range is 0.01 to 100"):
        check_multiplier(-1)


def test_the_per_server_cap_is_checked_at_start() -> None:
    with pytest.raises(ConfigError, match=r"max_queued_jobs_per_server \(600\) must be 1 to max_queued_jobs \(500\)"):
        parse_settings({"scheduler": {"max_queued_jobs_per_server": 600}}, env={})
    with pytest.raises(ConfigError, match=r"scheduler\.max_queued_jobs_per_server: Input should be greater than or eq"):
        parse_settings({"scheduler": {"max_queued_jobs_per_server": 0}}, env={})
    assert parse_settings({"scheduler": {"max_queued_jobs": 100}}, env={}).scheduler.max_queued_jobs_per_server == 250
