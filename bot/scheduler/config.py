"""Scheduler and quota settings: the ``scheduler:`` and ``quotas:`` sections of the config.

Tier limits declare their allowed range once, as field constraints; the same
ranges check admins' live changes (:func:`check_limit`), so a value the config
would refuse is refused at the admin command too, with the range named.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.scheduler.errors import InvalidLimit


class TierSettings(BaseModel):
    """One quota tier. Images are the unit of every quota; a request of 4 images costs 4."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: tuple[int, ...] = ()
    """Discord role ids that put a member in this tier (a role id is one server's; each server's admins add their
    own roles with ``/admin tier role``). Never names: anyone can make a role of any name in their own server."""
    burst: int = Field(default=8, ge=1, le=1000)
    """Images a member may request at once after a rest (the bucket size)."""
    rate_per_hour: float = Field(default=30.0, ge=0.01, le=100_000)
    """Images per hour the bucket refills (the sustained rate)."""
    daily_images: int = Field(default=200, ge=0, le=1_000_000)
    """Images per day; the day starts at ``quotas.daily_reset_hour_utc``."""
    max_images: int = Field(default=4, ge=1, le=9)
    """Images in one request."""
    max_queued: int = Field(default=3, ge=1, le=1000)
    """Jobs a member may have waiting or running at once."""
    max_steps: int = Field(default=50, ge=1, le=500)
    max_pixels: int = Field(default=768 * 768, ge=64 * 64, le=2048 * 2048)
    """Width x height of one image (589,824 is 768x768)."""
    weight: float = Field(default=1.0, ge=0.01, le=100)
    """Share of the GPU while backlogged: a weight-2 member gets twice a weight-1 member's GPU time."""

    @field_validator("roles", mode="before")
    @classmethod
    def _role_ids_only(cls, roles: object) -> object:
        for role in roles if isinstance(roles, list | tuple) else ():
            if isinstance(role, bool) or not (isinstance(role, int) or (isinstance(role, str) and role.isdigit())):
                raise ValueError(f"{role!r} is not a role id: tiers take role ids, never role names (anyone can "
                                 "make a role of any name in their own server); use the role's id (Developer Mode "
                                 "→ right-click the role → Copy ID)")
        return roles


LIMIT_NAMES: tuple[str, ...] = tuple(name for name in TierSettings.model_fields if name != "roles")
"""The tier limits an admin may set live or override per member."""

_INTEGER_LIMITS = frozenset(name for name in LIMIT_NAMES if TierSettings.model_fields[name].annotation is int)


def _field_range(model: type[BaseModel], name: str) -> tuple[float, float]:
    """The inclusive ``(lowest, highest)`` a field's ``ge``/``le`` constraints allow."""
    low = high = math.nan
    for constraint in model.model_fields[name].metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = constraint.ge
        elif isinstance(constraint, annotated_types.Le):
            high = constraint.le
    return low, high


def _number(value: float) -> str:
    """A number as an admin would write it: 1,000,000 or 0.01."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _check_number(name: str, value: object, low: float, high: float, *, integer: bool) -> float | int:
    allowed = f"allowed range is {_number(low)} to {_number(high)}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidLimit(name, f"must be a number; {allowed}")
    if integer and value != int(value):
        raise InvalidLimit(name, f"must be a whole number; {allowed}")
    if not low <= value <= high:
        raise InvalidLimit(name, f"{_number(value)} is out of range; {allowed}")
    return int(value) if integer else float(value)


def limit_range(name: str) -> tuple[float, float]:
    """The inclusive ``(lowest, highest)`` value allowed for tier limit ``name``."""
    return _field_range(TierSettings, name)


def check_limit_name(name: str) -> None:
    """Raise :class:`InvalidLimit` listing the limits if ``name`` is not one."""
    if name not in LIMIT_NAMES:
        raise InvalidLimit(name, f"unknown limit; choose one of {', '.join(LIMIT_NAMES)}")


def check_limit(name: str, value: float | None) -> float | None:
    """Return ``value`` as the limit's type (None stays None: "remove the change"), or raise :class:`InvalidLimit`."""
    check_limit_name(name)
    if value is None:
        return None
    return _check_number(name, value, *limit_range(name), integer=name in _INTEGER_LIMITS)


class QuotaSettings(BaseModel):
    """The ``quotas:`` section: tiers by role, the default tier, the daily reset and the tap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_tier: str = "default"
    """The tier of members none of whose roles match a tier."""
    tiers: dict[str, TierSettings] = Field(default_factory=lambda: {"default": TierSettings()})
    """Tiers from lowest to highest: a member whose roles match several gets the last one listed."""
    daily_reset_hour_utc: int = Field(default=0, ge=0, le=23)
    multiplier: float = Field(default=1.0, ge=0.01, le=100)
    """Scales every tier's burst, rate and daily budget (admins change it live to open the tap gradually)."""
    relax_weight: float = Field(default=0.1, ge=0.01, le=1)
    """Relax mode (free of the quota) queues at this fraction of the member's tier weight; each server may set its
    own (``/admin settings``)."""
    relax_max_jobs: int = Field(default=2, ge=0, le=100)
    """Relax jobs a member may have waiting or running at once (0: no relax mode); each server may set its own."""

    @model_validator(mode="after")
    def _check_tiers(self) -> QuotaSettings:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of the tiers ({', '.join(self.tiers)})")
        if any(not name.strip() for name in self.tiers):
            raise ValueError("tier names must not be blank")
        return self

    def tier_for_roles(self, role_ids: Collection[int], server_roles: Mapping[str, Collection[int]]) -> str:
        """The best tier (the last listed) any of the member's role ids gives, by the config's role ids or the
        server's own (``server_roles``: tier to role ids), else the default tier."""
        held = set(role_ids)
        best = self.default_tier
        for name, tier in self.tiers.items():
            if held.intersection(tier.roles) or held.intersection(server_roles.get(name, ())):
                best = name
        return best


class SchedulerSettings(BaseModel):
    """The ``scheduler:`` section: queue caps, pausing, retries, ETA, journal housekeeping, model swaps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_queued_jobs: int = Field(default=500, ge=1, le=1_000_000)
    """Jobs waiting or running across every server (the operator's ceiling); beyond it members are told to come
    back later."""
    max_queued_jobs_per_server: int = Field(default=250, ge=1, le=1_000_000)
    """Jobs waiting or running in one server, so that one flooding server cannot fill the queue for every other;
    beyond it that server's members are told to come back later."""
    accept_while_paused: bool = True
    """While an admin has paused the queue: accept jobs (run nothing) or refuse them."""
    requeue_on_failure: int = Field(default=1, ge=0, le=5)
    """Times a job hit by an engine crash, hang or bot restart is re-queued before it fails."""
    assumed_seconds_per_step: float = Field(default=0.1, gt=0, le=60)
    """ETA guess for one 512x512 image step until throughput has been measured."""
    throughput_smoothing: float = Field(default=0.2, gt=0, le=1)
    """Weight of the newest batch in the moving average of seconds per unit of cost."""
    idempotency_window_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    """How long an interaction id is remembered in memory (the database remembers it forever)."""
    image_retention_hours: float = Field(default=24.0, ge=0, le=24 * 365)
    """How long images are kept in the database after delivery (for full-size requests)."""
    shutdown_grace_s: float = Field(default=30.0, ge=0, le=3600)
    """On shutdown, how long the running batch may finish before it is left to be resumed."""
    model_switch_cost_s: float = Field(default=10.0, ge=0, le=600)
    """About what swapping the engine's model takes: an engine keeps its loaded model's jobs leading while the fairer
    job of another model it passes over is within this many GPU seconds of its share (0: always the fairest)."""

    @field_validator("assumed_seconds_per_step", "model_switch_cost_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _server_cap_within_the_ceiling(self) -> SchedulerSettings:
        # Only when set: lowering max_queued_jobs alone must not make the default per-server cap an error.
        cap, ceiling = self.max_queued_jobs_per_server, self.max_queued_jobs
        if "max_queued_jobs_per_server" in self.model_fields_set and cap > ceiling:
            raise ValueError(f"max_queued_jobs_per_server ({cap:,}) must be 1 to max_queued_jobs ({ceiling:,})")
        return self


def check_multiplier(value: float) -> float:
    """Return a valid global multiplier, or raise :class:`InvalidLimit` naming the allowed range."""
    return _check_number("multiplier", value, *_field_range(QuotaSettings, "multiplier"), integer=False)


RELAX_TERMS = ("relax_weight", "relax_max_jobs")
"""The relax-mode terms a server's admins may set for their server (the config's ``quotas`` gives the defaults)."""


def check_relax_term(name: str, value: float) -> float | int:
    """Return a valid relax term (``relax_max_jobs`` a whole number), or raise :class:`InvalidLimit` naming the
    allowed range."""
    return _check_number(name, value, *_field_range(QuotaSettings, name), integer=name == "relax_max_jobs")


def relax_term_range(name: str) -> str:
    """A relax term's allowed range, as admins are told it."""
    return " to ".join(_number(bound) for bound in _field_range(QuotaSettings, name))


SERVER_WEIGHT_RANGE = (0.01, 100.0)
"""The operator's weight of a server (its share of the GPU against the others'; 1 by default): above zero."""


def check_server_weight(value: float) -> float:
    """Return a valid server weight, or raise :class:`InvalidLimit` naming the allowed range."""
    return _check_number("server weight", value, *SERVER_WEIGHT_RANGE, integer=False)
