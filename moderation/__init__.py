"""Terms-of-service checks for prompts, personal-information detection, and the flag store.

Never imports ``bot``, ``discord`` or ``torch``.
"""

from moderation.config import FilterSettings, FlagSettings, ModerationSettings
from moderation.filter import PromptFilter, RuleError, Verdict, verdict_lines
from moderation.flags import FlagError, FlaggedImage, FlagOutcome, FlagStore, ReviewError, ReviewItem
from moderation.prompt_log import BlockedPromptLog

__all__ = [
    "BlockedPromptLog",
    "FilterSettings",
    "FlagError",
    "FlagOutcome",
    "FlagSettings",
    "FlagStore",
    "FlaggedImage",
    "ModerationSettings",
    "PromptFilter",
    "ReviewError",
    "ReviewItem",
    "RuleError",
    "Verdict",
    "verdict_lines",
]
