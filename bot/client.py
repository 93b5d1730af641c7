"""The Discord client: a ``commands.Bot`` that loads the cogs, registers the buttons and syncs commands."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot import errors, review, views
from bot.cogs import admin, dream, flag, mod, queue
from bot.command_sync import sync_commands
from bot.delivery import Delivery
from bot.services import Services

log = logging.getLogger(__name__)

COGS = (dream, queue, flag, mod, admin)
"""Imported once, not loaded as extensions: an extension's module is compiled and run again at every start."""


class DreamBot(commands.Bot):
    """The bot. Cogs reach the services (built in :mod:`bot.app`) as ``bot.services``."""

    def __init__(self, services: Services) -> None:
        # Slash commands carry the member and their roles, so no privileged intents are needed.
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            http_trace=services.metrics.discord.trace_config(),
        )
        services.metrics.discord.watch(self)
        self.services = services
        self.delivery = Delivery(self, services)

    async def setup_hook(self) -> None:
        errors.install(self.tree)
        for cog in COGS:
            await cog.setup(self)
        self.add_dynamic_items(*views.DYNAMIC_ITEMS, *review.DYNAMIC_ITEMS)
        synced = await sync_commands(self.tree, self.services.db, self.services.settings.discord.guild_ids)
        log.info("commands %s", f"synced to {', '.join(synced)}" if synced else "unchanged; not synced")
        self.delivery.start()

    async def close(self) -> None:
        await self.delivery.stop()
        await super().close()
