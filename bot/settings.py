"""Typed, validated, frozen settings: ``config.yaml`` plus secrets from the environment.

Loaded once at start and passed to constructors. A bad file fails here with the
YAML path of the bad key and what was expected; unknown keys are errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr, ValidationError, field_validator

from bot.control_settings import ControlSettings
from bot.image_policy import ImagePolicySettings
from bot.scheduler.config import QuotaSettings, SchedulerSettings
from bot.styles import StyleSettings, check_style_names
from engine.config import EngineSettings
from moderation.config import ModerationSettings

DEFAULT_CONFIG = Path("config.yaml")
TOKEN_ENV = "DISCORD_TOKEN"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


class Section(BaseModel):
    """Base for config sections: unknown keys are errors and values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


RETENTION_DAYS = (1, 3650)
"""The allowed range of a retention period, in days."""


class DiscordSettings(Section):
    """The ``discord:`` section: where the bot answers, who moderates, and how it talks to Discord."""

    guild_ids: tuple[int, ...] = ()
    """Guilds to sync commands to (instant); empty syncs globally (can take an hour to show)."""
    allowed_guilds: Literal["any", "listed"] | None = None
    """Which servers the bot serves: ``any``, or only those in ``guild_ids``; None (the default) means
    ``listed`` when ``guild_ids`` is non-empty, else ``any``."""
    operator_contact: str = Field(default="the bot's operator", min_length=1, max_length=200)
    """Who to ask to have a server served; named in the refusal in servers the bot does not serve."""
    owner_ids: tuple[int, ...] = ()
    """The operator: users who control what all servers share (pause the GPU, the global multiplier,
    reload, which servers are served); empty means the application's owner(s) as Discord reports them."""
    left_guild_retention_days: int = 30
    """Days a server's data is kept after the bot leaves it, then deleted (1 to 3650)."""
    dream_channel_ids: tuple[int, ...] = ()
    """Channels where ``/dream`` may be used; empty allows every channel the bot can see."""
    moderator_role_ids: tuple[int, ...] = ()
    """Roles whose members moderate their server, besides anyone with Manage Messages there."""
    admin_role_ids: tuple[int, ...] = ()
    """Roles whose members administer their server (and moderate it), besides anyone with Administrator."""
    moderators_channel_id: int | None = None
    """Where flag alerts go; None sends no alerts (flags still wait in ``/mod review``)."""
    progress_edit_interval_s: float = Field(default=3.0, ge=1.0, le=60.0)
    """Least time between two progress edits of one message (Discord rate-limits edits)."""
    late_result_after_s: float = Field(default=14 * 60, ge=60, le=14.5 * 60)
    """Results for interactions older than this go out as a channel message mentioning the member,
    since the interaction token dies at 15 minutes."""
    max_prompt_tokens: int = Field(default=75, ge=1, le=1000)
    """CLIP reads 75 tokens of a prompt (77 with its start and end markers); the rest is ignored."""
    hide_flagged: Literal["spoiler", "remove"] = "spoiler"
    """At ``moderation.flags.hide_score``: blur the image behind a spoiler, or take it off the message."""
    long_prompt: Literal["refuse", "truncate"] = "refuse"
    """A prompt over ``max_prompt_tokens``: refuse it, or cut it there and warn the member."""
    shutdown: Literal["finish", "cancel"] = "finish"
    """On SIGINT/SIGTERM: let the running batch finish (up to ``scheduler.shutdown_grace_s``), or
    cancel it at once (its jobs are re-queued on the next start)."""

    @field_validator("left_guild_retention_days")
    @classmethod
    def _retention_in_range(cls, days: int) -> int:
        if not RETENTION_DAYS[0] <= days <= RETENTION_DAYS[1]:
            raise ValueError(f"must be {RETENTION_DAYS[0]} to {RETENTION_DAYS[1]} days")
        return days

    def serves(self, guild_id: int) -> bool:
        """Whether the bot serves this server (see ``allowed_guilds``)."""
        listed = self.allowed_guilds == "listed" or (self.allowed_guilds is None and bool(self.guild_ids))
        return not listed or guild_id in self.guild_ids


class DatabaseSettings(Section):
    """The ``database:`` section."""

    path: Path = Path("data/dreamqueue.db")
    busy_timeout_ms: PositiveInt = 5000


class LoggingSettings(Section):
    """The ``logging:`` section."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MetricsSettings(Section):
    """The ``metrics:`` section: the Prometheus endpoint with ``/healthz`` and ``/readyz`` beside it."""

    port: int | None = Field(default=None, ge=0, le=65535)
    """The HTTP port serving ``/metrics``, ``/healthz`` and ``/readyz``; None serves nothing (0: any free port)."""
    host: str = Field(default="127.0.0.1", min_length=1)
    """The address to listen on; the default answers this machine only (``0.0.0.0`` for every interface)."""


class Settings(Section):
    """Everything the bot is configured with."""

    discord: DiscordSettings = DiscordSettings()
    database: DatabaseSettings = DatabaseSettings()
    engine: EngineSettings = EngineSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    quotas: QuotaSettings = QuotaSettings()
    moderation: ModerationSettings = ModerationSettings()
    image_policy: ImagePolicySettings = ImagePolicySettings()
    controls: ControlSettings = ControlSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    styles: dict[str, StyleSettings] = Field(default_factory=dict)
    """Styles every server's members may use in ``/dream style:``, by name (each server adds its own)."""
    token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """The bot token, from ``DISCORD_TOKEN``; never read from the file."""

    @field_validator("styles")
    @classmethod
    def _style_names(cls, styles: dict[str, StyleSettings]) -> dict[str, StyleSettings]:
        return check_style_names(styles)


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a YAML path: ``quotas.tiers[2].daily_images``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_settings(data: Mapping[str, Any] | None, *, source: str = "config", env: Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed config mapping (plus the token from ``env``) into :class:`Settings`."""
    data = dict(data or {})
    if "token" in data:
        raise ConfigError(f"{source}: token: the bot token is read from the {TOKEN_ENV} environment variable, not the file")
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV):
        data["token"] = env[TOKEN_ENV]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {_yaml_path(error['loc'])}: {error['msg']}"
            + ("" if error["type"] == "missing" else f" (got {error['input']!r})" if _short(error["input"]) else "")
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(problems)) from None


def _short(value: object) -> bool:
    """Whether a bad value is small enough to quote back in an error."""
    return isinstance(value, str | int | float | bool) and len(repr(value)) <= 80


def load_settings(path: Path | str | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from ``path`` (default ``config.yaml``; a missing default file means all defaults)."""
    explicit = path is not None
    path = Path(path) if explicit else DEFAULT_CONFIG
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such config file") from None
        return parse_settings({}, source=str(path), env=env)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return parse_settings(data, source=str(path), env=env)


RESTART_ONLY = ("discord.guild_ids", "discord.owner_ids", "discord.left_guild_retention_days")
"""Keys under the live sections that still wait for a restart (commands are synced to guilds, the operator
is known and the purge is set up at start)."""


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """The dotted keys whose values differ between ``old`` and ``new``, sorted."""
    before, after = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def is_live(key: str) -> bool:
    """Whether a change of ``key`` takes effect on reload (see :func:`with_live`) rather than at the next restart."""
    return key.startswith(("discord.", "moderation.filter.", "image_policy.")) and not key.startswith(RESTART_ONLY)


def with_live(current: Settings, new: Settings) -> Settings:
    """``current`` with the settings of ``new`` that :func:`is_live` names: the ``discord`` section, the filter
    and the image policy."""
    names = [key.removeprefix("discord.") for key in RESTART_ONLY]
    kept = {name: getattr(current.discord, name) for name in names}
    discord = new.discord.model_copy(update=kept)
    moderation = current.moderation.model_copy(update={"filter": new.moderation.filter})
    return current.model_copy(update={"discord": discord, "moderation": moderation, "image_policy": new.image_policy})


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
