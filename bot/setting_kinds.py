"""What each server setting takes, and how its value is shown: the table the settings store and ``/admin settings``
share."""

from __future__ import annotations

from typing import Any, Literal

from bot.scheduler.config import relax_term_range
from moderation.warning_settings import MAX_WARNING_HOURS, WARNINGS_TO_BAN_RANGE

Kind = Literal["roles", "channels", "channel", "score", "categories", "count", "hours", "fraction", "relax", "strength"]
SCORE_RANGE = (0.5, 100.0)
"""The allowed range of a server's flag thresholds."""
NUMBER_KINDS: dict[str, str] = {
    "score": f"{SCORE_RANGE[0]:g} to {SCORE_RANGE[1]:g}",
    "count": f"a whole number from {WARNINGS_TO_BAN_RANGE[0]} to {WARNINGS_TO_BAN_RANGE[1]}",
    "hours": f"more than 0 and at most {MAX_WARNING_HOURS:g} hours",
    "fraction": "0 to 1",
    "strength": "more than 0 and at most 1",
    "relax": f"relax_weight {relax_term_range('relax_weight')}, relax_max_jobs {relax_term_range('relax_max_jobs')}",
}
"""The kinds of setting given as a number, and the range each allows."""
SETTING_KINDS: dict[str, Kind] = {
    "dream_channel_ids": "channels",
    "moderators_channel_id": "channel",
    "moderator_role_ids": "roles",
    "admin_role_ids": "roles",
    "alert_score": "score",
    "hide_score": "score",
    "filter_off": "categories",
    "nsfw_prompt_categories": "categories",
    "warnings_to_ban": "count",
    "warning_window_hours": "hours",
    "auto_ban_hours": "hours",
    "image_allow_below": "fraction",
    "image_block_at": "fraction",
    "nsfw_image_allow_below": "fraction",
    "nsfw_image_block_at": "fraction",
    "relax_weight": "relax",
    "relax_max_jobs": "relax",
    "vary_subtle_strength": "strength",
    "vary_strong_strength": "strength",
    "upscale_strength": "strength",
}
"""The keys a server's admins may set, and what each takes."""
LIST_KINDS: frozenset[Kind] = frozenset({"roles", "channels", "categories"})
"""The kinds whose value is a list, which admins may add to or remove from."""


def shown(kind: Kind, value: Any) -> str:
    """A setting's value as Discord shows it: role and channel mentions, numbers, "none"."""
    if kind == "fraction" and value is None:
        return "as in other channels"
    if kind in NUMBER_KINDS:
        return f"{value:g}"
    if kind == "categories":
        return ", ".join(value) or "none"
    values = value if isinstance(value, tuple) else (() if value is None else (value,))
    mention = "<@&{}>" if kind == "roles" else "<#{}>"
    return ", ".join(mention.format(item) for item in values) or "none"
