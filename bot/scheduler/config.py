"""Scheduler and quota settings (placeholder until the scheduler lands)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SchedulerSettings(BaseModel):
    """The ``scheduler:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class QuotaSettings(BaseModel):
    """The ``quotas:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
