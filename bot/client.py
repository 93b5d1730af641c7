"""The Discord client: a ``commands.Bot`` that loads the cogs, registers the buttons and syncs commands."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any

import discord
from discord.ext import commands

from bot import errors, review, views, warning_notices
from bot.access import ServedTree
from bot.cogs import admin, dream, flag, member_settings, mod, queue, styles
from bot.command_sync import sync_commands
from bot.delivery import Delivery
from bot.services import Services

log = logging.getLogger(__name__)

COGS = (dream, queue, member_settings, styles, flag, mod, admin)
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
            tree_cls=ServedTree,
            http_trace=services.metrics.discord.trace_config(),
        )
        services.metrics.discord.watch(self)
        self.services = services
        self.delivery = Delivery(self, services)
        services.warnings.on_ban(functools.partial(warning_notices.tell_moderators, self))
        self._handlers: set[asyncio.Task[None]] = set()

    async def setup_hook(self) -> None:
        errors.install(self.tree)
        if not self.services.operator_ids:
            self.services.operator_ids = await self.application_owners()
        for cog in COGS:
            await cog.setup(self)
        self.add_dynamic_items(*views.DYNAMIC_ITEMS, *review.DYNAMIC_ITEMS)
        synced = await sync_commands(self.tree, self.services.db, self.services.settings.discord.guild_ids)
        log.info("commands %s", f"synced to {', '.join(synced)}" if synced else "unchanged; not synced")
        self.delivery.start()

    async def on_ready(self) -> None:
        """Record the served servers the bot is in, and those it left while offline."""
        served = self.services.settings.discord.serves
        await self._finished_before_close(
            self.services.retention.present({guild.id for guild in self.guilds if served(guild.id)})
        )

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Keep a served server's data again (it is deleted a retention period after the bot leaves)."""
        if self.services.settings.discord.serves(guild.id):
            await self._finished_before_close(self.services.retention.joined(guild.id))
        log.info("joined server %s (%s)", guild.id, "served" if self.services.settings.discord.serves(guild.id)
                 else "not served: its members are refused")  # fmt: skip

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Start the retention period of a server the bot left or was removed from."""
        await self._finished_before_close(self.services.retention.left(guild.id))
        log.info("left server %s; its data is deleted after %d days", guild.id,
                 self.services.settings.discord.left_guild_retention_days)  # fmt: skip

    async def application_owners(self) -> frozenset[int]:
        """The application's owner, or its team's members, as Discord reports them."""
        info = await self.application_info()
        if info.team is not None:
            return frozenset(member.id for member in info.team.members)
        return frozenset({info.owner.id})

    async def _finished_before_close(self, work: Coroutine[Any, Any, None]) -> None:
        """Run an event handler's database ``work`` so that :meth:`close` waits for it (the database is closed
        right after the bot); work that arrives once closing has begun is dropped."""
        if self.is_closed():
            work.close()
            return
        task = asyncio.ensure_future(work)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        await asyncio.shield(task)

    async def close(self) -> None:
        await self.delivery.stop()
        await super().close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
