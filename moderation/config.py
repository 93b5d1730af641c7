"""Moderation settings (placeholder until the filter lands)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ModerationSettings(BaseModel):
    """The ``moderation:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
