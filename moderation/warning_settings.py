"""The ``moderation.warnings:`` section and the ranges its values (and servers' own values) must keep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

WARNINGS_TO_BAN_RANGE = (1, 20)
"""How many warnings within the window may bring an automatic ban."""
MAX_WARNING_HOURS = 24.0 * 365
"""The longest warning window and automatic ban, in hours (both must be more than 0)."""


def check_hours(hours: float) -> float:
    """``hours`` if it is more than 0 and at most :data:`MAX_WARNING_HOURS`, else a ValueError saying so."""
    if not 0 < hours <= MAX_WARNING_HOURS:
        raise ValueError(f"must be more than 0 and at most {MAX_WARNING_HOURS:g} hours")
    return float(hours)


def check_warnings_to_ban(count: float) -> int:
    """``count`` if it is a whole number in :data:`WARNINGS_TO_BAN_RANGE`, else a ValueError saying so."""
    low, high = WARNINGS_TO_BAN_RANGE
    if count != int(count) or not low <= count <= high:
        raise ValueError(f"must be a whole number from {low} to {high}")
    return int(count)


class WarningSettings(BaseModel):
    """The ``moderation.warnings:`` section: every server's defaults for warnings that escalate to a ban."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warnings_to_ban: int = 3
    """Warnings within the window that bring an automatic ban (1 to 20)."""
    warning_window_hours: float = 24.0
    """How far back warnings count toward a ban."""
    auto_ban_hours: float = 24.0
    """How long an automatic ban lasts; it lifts itself."""

    @field_validator("warnings_to_ban")
    @classmethod
    def _count_in_range(cls, count: int) -> int:
        try:
            return check_warnings_to_ban(count)
        except ValueError as exc:
            raise PydanticCustomError("invalid_setting", "{reason}", {"reason": str(exc)}) from None

    @field_validator("warning_window_hours", "auto_ban_hours")
    @classmethod
    def _hours_in_range(cls, hours: float) -> float:
        try:
            return check_hours(hours)
        except ValueError as exc:
            raise PydanticCustomError("invalid_setting", "{reason}", {"reason": str(exc)}) from None
