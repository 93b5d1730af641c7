"""How much of a prompt Stable Diffusion will read: CLIP's text encoder sees 75 tokens.

The bot has no tokenizer (the model's lives in the engine process), so it counts
the pieces CLIP's pre-tokenizer splits a prompt into before byte-pair encoding:
each run of letters, each digit, each run of punctuation. Byte-pair encoding
only ever splits a piece further, so the count is a lower bound: a prompt this
refuses is certainly too long, and common English words are one token each, so
for ordinary prompts the bound is the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.refusal import Refusal
from bot.settings import DiscordSettings

# CLIP's pattern, with Python's classes for \p{L} and \p{N}: contractions, letters, one digit, punctuation.
_PIECE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)


@dataclass(frozen=True)
class PromptLength:
    """A prompt measured against the token limit."""

    tokens: int
    """At least this many tokens."""
    limit: int
    kept: str
    """The prompt cut after the last piece within the limit (the whole prompt when it fits)."""

    @property
    def fits(self) -> bool:
        return self.tokens <= self.limit


def measure(prompt: str, limit: int) -> PromptLength:
    """Count ``prompt``'s tokens (a lower bound) and cut it to the first ``limit`` of them."""
    pieces = list(_PIECE.finditer(prompt))
    if len(pieces) <= limit:
        return PromptLength(len(pieces), limit, prompt)
    return PromptLength(len(pieces), limit, prompt[: pieces[limit - 1].end()].rstrip())


def fit_prompt(prompt: str, settings: DiscordSettings) -> tuple[str, str]:
    """The prompt within the token limit, and a note when it was cut; refuses instead when so configured."""
    length = measure(prompt, settings.max_prompt_tokens)
    if length.fits:
        return prompt, ""
    if settings.long_prompt == "refuse":
        raise Refusal(
            f"Your prompt is at least {length.tokens} tokens long; Stable Diffusion reads only "
            f"{length.limit}. Shorten it and try again."
        )
    return length.kept, f"Your prompt was cut to its first {length.limit} tokens (it had at least {length.tokens})."
