"""Which server an interaction comes from: every scheduler call is keyed by it."""

from __future__ import annotations

import discord

from bot.refusal import Refusal

IN_A_SERVER = "Use this in a server: the bot keeps each server's queue, quotas and images apart."


def server_id(interaction: discord.Interaction) -> int:
    """The interaction's guild id; a DM is refused (nothing in the scheduler belongs to no server)."""
    if interaction.guild_id is None:
        raise Refusal(IN_A_SERVER)
    return interaction.guild_id
