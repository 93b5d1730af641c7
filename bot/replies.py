"""Acknowledging interactions and answering them privately, whatever was sent before.

Every callback defers first, so Discord hears back within its 3 seconds even
when the work behind it is slow. A public defer shows "thinking…" to the whole
channel; a refusal after one must not stay public, so :func:`whisper` deletes
the placeholder and answers ephemerally instead.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.text import clip

log = logging.getLogger(__name__)

_PUBLIC_PLACEHOLDER = "dreamqueue.public_placeholder"
MAX_CONTENT = 2000
"""Discord's limit on a message's text."""


async def defer(interaction: discord.Interaction, *, public: bool = False, thinking: bool = True) -> None:
    """Acknowledge now; ``public`` replies later in the channel, else privately.

    ``thinking=False`` (a button, or a form opened from one) acknowledges without
    a placeholder; the original response is then the message the button is on.
    """
    if interaction.response.is_done():
        return
    if not thinking and interaction.message is not None:
        await interaction.response.defer()
        return
    await interaction.response.defer(ephemeral=not public, thinking=True)
    interaction.extras[_PUBLIC_PLACEHOLDER] = public


async def whisper(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer only the member who interacted (an ephemeral message), at any point of the interaction."""
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    if content is not None:
        kwargs["content"] = clip(content, MAX_CONTENT)
    if not interaction.response.is_done():
        await interaction.response.send_message(ephemeral=True, **kwargs)
        return
    if interaction.extras.pop(_PUBLIC_PLACEHOLDER, False):
        # The first followup would replace the public "thinking…" message and stay public.
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.debug("could not delete the placeholder of %s: %s", interaction.id, exc)
    await interaction.followup.send(ephemeral=True, **kwargs)


def placeholder_used(interaction: discord.Interaction) -> None:
    """Record that the public placeholder became a real message (a refusal must not delete it now)."""
    interaction.extras.pop(_PUBLIC_PLACEHOLDER, None)
