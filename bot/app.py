"""Starting and stopping the whole bot: database, engine, scheduler, moderation, Discord.

:func:`run_bot` is what ``dreamqueue run`` and ``python -m bot`` call.
:class:`App` opens the parts in order and closes them in reverse; tests use it
to run the real bot against a fake Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import aiohttp
import discord

from bot.alerts import AlertLog
from bot.client import DreamBot
from bot.db import Database
from bot.filter_rules import FilterRuleLog, GuildFilters, long_lived
from bot.guild_settings import GuildSettingsStore
from bot.health import Monitoring, Readiness
from bot.metrics import BotMetrics
from bot.scheduler.clock import Clock
from bot.scheduler.service import DreamService
from bot.services import Services
from bot.settings import TOKEN_ENV, Settings
from engine.client import EngineStartError
from engine.pool import local_engine
from engine.types import EngineClient
from moderation.config import PII_CATEGORY
from moderation.filter import PromptFilter
from moderation.flags import FlagStore
from moderation.prompt_log import BlockedPromptLog

log = logging.getLogger(__name__)

NO_TOKEN = f"""\
dreamqueue: no bot token: set the {TOKEN_ENV} environment variable.

To get a token: open https://discord.com/developers/applications, create an
application (or pick yours), open "Bot", press "Reset Token" and copy it. Then
    export {TOKEN_ENV}=...   (or put it in your service's environment)
Invite the bot with the "bot" and "applications.commands" scopes (OAuth2 >
URL Generator) and the Send Messages, Embed Links, Attach Files and Manage
Messages permissions. Never put the token in config.yaml."""


def make_engine(settings: Settings) -> EngineClient:
    """With ``engine.backend: ray``, a pool of engine actors; else the engine of this machine (the simulated
    engine when ``engine.simulated``, else the engine process)."""
    if settings.engine.backend == "ray":
        from engine.ray_pool import RayPool  # only here: the bot runs without Ray installed

        return RayPool(settings.engine)
    return local_engine(settings.engine)


class App:
    """The running parts of the bot. ``await App.open(settings)``, run :attr:`bot`, then :meth:`close`."""

    def __init__(self, settings: Settings, db: Database, engine: EngineClient, services: Services) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        self.services = services
        self.bot = DreamBot(services)
        readiness = Readiness(engine, db, services.metrics.discord)
        self.monitoring = Monitoring(settings.metrics, services.metrics, readiness)
        self._purger: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls, settings: Settings, *, engine: EngineClient | None = None, config_path: Path | None = None,
        clock: Clock | None = None,
    ) -> App:  # fmt: skip
        """Open the database, start the engine (``engine`` replaces the configured one) and the scheduler.

        ``config_path`` is the file ``/admin reload`` re-reads (default: ``config.yaml``); ``clock`` the
        scheduler's time, which bans and warnings are measured by (default: the system clock).
        """
        db = await Database.open(settings.database.path, busy_timeout_ms=settings.database.busy_timeout_ms)
        engine = engine or make_engine(settings)
        monitoring: Monitoring | None = None
        try:
            await engine.start()
            if not engine.health().safety_checker:
                log.warning("generated images are NOT checked for safety: the engine has no classifier "
                            "(engine.safety_checker); every image is posted as it is")  # fmt: skip
            guild_settings = GuildSettingsStore(db, settings)
            await guild_settings.load()
            dreams = DreamService(
                db,
                engine,
                scheduler=settings.scheduler,
                quotas=settings.quotas,
                max_batch_images=settings.engine.max_batch_images,
                clock=clock,
                tier_roles=guild_settings.tier_roles,
                relax_terms=lambda guild_id: guild_settings.effective(guild_id).relax,
            )
            with long_lived():  # the config's filter, and what start-up made so far, stay until the bot stops
                base_filter = await asyncio.to_thread(PromptFilter.from_settings, settings.moderation)
                filters = GuildFilters(
                    base_filter, FilterRuleLog(db), lambda guild_id: guild_settings.effective(guild_id).filter_off
                )
                await filters.load()
            services = Services(
                settings,
                db,
                engine,
                dreams,
                filters,
                BlockedPromptLog(db, retention_days=settings.moderation.prompt_log_retention_days),
                FlagStore(db, settings.moderation.flags),
                AlertLog(db),
                guild_settings,
                config_path=config_path,
                metrics=BotMetrics(
                    prompt_categories=[*base_filter.settings.categories, PII_CATEGORY],
                    flag_reasons=settings.moderation.flags.reasons,
                ),
            )
            app = cls(settings, db, engine, services)  # the bot subscribes to job events before the scheduler starts
            monitoring = app.monitoring
            await monitoring.start(dreams)  # ...and so do the metrics
            await dreams.start()
            app._purger = asyncio.create_task(services.retention.run(), name="purge")
        except BaseException:
            if monitoring is not None:
                await monitoring.close()
            await engine.close()
            await db.close()
            raise
        return app

    async def close(self) -> None:
        """Shut down: stop admitting, let the running batch finish (or cancel it, by config), post what
        finished, disconnect from Discord, stop the engine, close the database."""
        if self._closed:
            return
        self._closed = True
        await self.monitoring.close()  # first: from now on the bot is not ready
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        cancel = self.services.settings.discord.shutdown == "cancel"  # as last reloaded
        await self.services.dreams.close(grace_s=0.0 if cancel else None)
        await self.bot.delivery.drain(self.settings.scheduler.shutdown_grace_s)
        await self.bot.close()
        await self.engine.close()
        await self.db.close()


async def serve(settings: Settings, token: str, config_path: Path | None = None) -> None:
    """Run the bot until SIGINT or SIGTERM, then shut down cleanly."""
    app = await App.open(settings, config_path=config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(app.bot.start(token), name="discord")
    stopping = asyncio.create_task(stop.wait(), name="signals")
    try:
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # the connection ended on its own: raise why
        policy = "cancelling" if app.services.settings.discord.shutdown == "cancel" else "finishing"
        log.info("shutting down (%s the running batch)", policy)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stopping.cancel()
        await app.close()
        with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
            await runner


def run_bot(settings: Settings, config_path: Path | None = None) -> int:
    """Run the bot from ``settings`` (the token from ``DISCORD_TOKEN``); return the exit status.

    ``config_path`` is the file the settings came from, re-read by ``/admin reload``.
    """
    if settings.token is None:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings, settings.token.get_secret_value(), config_path))
    except discord.LoginFailure:
        print(f"dreamqueue: Discord refused the token in {TOKEN_ENV}; reset it in the developer portal.",
              file=sys.stderr)  # fmt: skip
        return 2
    except aiohttp.ClientConnectionError as exc:
        print(f"dreamqueue: cannot reach Discord ({exc}); check this machine's network connection.", file=sys.stderr)
        return 2
    except EngineStartError as exc:
        print(f"dreamqueue: the image engine did not start: {exc}", file=sys.stderr)
        return 2
    return 0
