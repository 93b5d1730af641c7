"""End-to-end harness: the real bot (``bot.app.App``) connected to the fake Discord.

A :class:`World` is one guild with a dream channel, a moderators' channel,
moderator and admin roles and a few members; :meth:`World.start` opens the app
on a fresh (or the same, for restarts) database file and connects its bot.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio
import yaml

from bot.app import App
from bot.scheduler.clock import SystemClock
from bot.settings import Settings, load_settings
from engine.types import EngineClient
from tests.fakediscord import FakeChannel, FakeDiscord, FakeGuild, FakeMember
from tests.fakediscord.records import Message


class ShiftedClock(SystemClock):
    """The system clock, moved forward at once by :meth:`advance`: hours of bans pass without waiting, while
    everything that sleeps still sleeps in real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return super().now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class World:
    """The fake server, its people and places, and the running app."""

    fake: FakeDiscord
    guild: FakeGuild
    dreams: FakeChannel
    lounge: FakeChannel
    mods: FakeChannel
    alice: FakeMember
    bob: FakeMember
    carol: FakeMember
    moderator: FakeMember
    admin: FakeMember
    db_path: Path
    config: dict[str, Any]
    config_path: Path
    """Where :meth:`start` writes the config, and ``/admin reload`` reads it."""
    app: App | None = None
    apps: list[App] = field(default_factory=list)
    clock: ShiftedClock = field(default_factory=ShiftedClock)
    """The scheduler's clock (bans, quotas, warnings): :meth:`ShiftedClock.advance` moves it forward."""

    def write_config(self, **overrides: Any) -> Settings:
        """Write the config, with ``overrides`` of whole sections' keys, to :attr:`config_path`; return it loaded."""
        config = {**self.config}
        for section, values in overrides.items():
            config[section] = {**config.get(section, {}), **values}
        self.config_path.write_text(yaml.safe_dump(config), "utf-8")
        return load_settings(self.config_path, env={})

    async def start(self, *, engine_client: EngineClient | None = None, **overrides: Any) -> App:
        """Open the app (same database file every time) and connect its bot to the fake.

        ``overrides`` are config sections to change, e.g. ``discord={"long_prompt": "truncate"}``.
        """
        settings = self.write_config(**overrides)
        app = await App.open(settings, engine=engine_client, config_path=self.config_path, clock=self.clock)
        self.apps.append(app)
        try:
            await self.fake.start_bot(app.bot)
        except BaseException:
            await app.close()
            raise
        self.app = app
        return app

    async def stop(self) -> None:
        """Disconnect the bot and close the app, as on shutdown."""
        if self.app is not None:
            app, self.app = self.app, None
            await app.close()
            await self.fake.stop_bot()

    async def restart(self, **overrides: Any) -> App:
        await self.stop()
        return await self.start(**overrides)

    async def dream(self, who: FakeMember, channel: FakeChannel | None = None, **options: Any) -> Any:
        """Run ``/dream`` (few steps, to keep it quick) and return the interaction."""
        options.setdefault("steps", 4)
        return await self.fake.slash(who, channel or self.dreams, "dream", **options)

    async def result(self, ix: Any, timeout: float = 20.0) -> Message:
        """The message that carries the job's grid."""
        return await ix.wait_message(
            lambda m: bool(m.attachments) and bool(m.embeds) and "Seeds" in str(m.embeds[0]), timeout=timeout
        )


@dataclass
class Server:
    """A second server the same bot is in, with its own people, roles and channels."""

    guild: FakeGuild
    dreams: FakeChannel
    mods: FakeChannel
    admin: FakeMember
    """Administrator in this server."""
    moderator: FakeMember
    """Manage Messages in this server."""
    member: FakeMember
    namesake: FakeMember
    """Holds roles named like the first server's admin, moderator and tier roles, with no permissions."""
    alice: FakeMember
    """The first server's alice, a member here too."""


def forged_button(world: World, channel: FakeChannel, custom_id: str) -> Message:
    """A message of the bot's in ``channel`` with a button of any custom id, as a modified client could click."""
    row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}]}
    stored = world.fake.create_message(channel, world.fake.bot_user, {"content": "", "components": [row]}, [])
    return world.fake.snapshot(stored)


def has_text(text: str) -> Callable[[Message], bool]:
    """A message predicate: ``text`` in its content or first embed."""
    return lambda m: text in m.content or (bool(m.embeds) and text in str(m.embeds[0]))


def shows_progress(message: Message) -> bool:
    """A message predicate: the job's progress bar, shown once the journal has the job running (not just picked)."""
    return bool(message.embeds) and "Dreaming" in str(message.embeds[0])


SLOW_CALLBACK_S = 0.1
"""Event-loop CPU time one callback may use before the probe fails the test."""


@pytest.fixture(autouse=True)
def no_slow_callbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test in which one event-loop callback (a task step, a timer, an I/O handler) ran longer than
    :data:`SLOW_CALLBACK_S`, naming it: such a callback holds up every other member's interaction.

    It counts the CPU time of the loop's thread, not wall time, so a busy machine that pauses the process
    does not fail the test, while work done on the event loop does, however fast the machine. What the test
    process held before the test (torch, imported by other tests, which the bot never imports) is frozen out
    of the garbage collector meanwhile, so a collection's pause reflects the bot's own heap.
    """
    slow: list[str] = []
    gc_seconds = [0.0, 0.0]  # collecting since: total, started at
    run = asyncio.events.Handle._run

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_seconds[1] = time.thread_time()
        else:
            gc_seconds[0] += time.thread_time() - gc_seconds[1]

    def timed_run(handle: asyncio.Handle) -> None:
        started, collecting = time.thread_time(), gc_seconds[0]
        run(handle)
        spent = time.thread_time() - started
        if spent > SLOW_CALLBACK_S:
            collected = gc_seconds[0] - collecting
            slow.append(f"{spent * 1000:.0f} ms ({collected * 1000:.0f} ms collecting garbage): {_describe(handle)}")

    gc.freeze()
    gc.callbacks.append(on_gc)
    monkeypatch.setattr(asyncio.events.Handle, "_run", timed_run)
    try:
        yield
    finally:
        gc.callbacks.remove(on_gc)
        gc.unfreeze()
    assert not slow, "event-loop callbacks too slow:\n" + "\n".join(slow)


def _describe(handle: asyncio.Handle) -> str:
    """The callback, and for a task's step the task and where it is now suspended (just after the slow part)."""
    task = getattr(handle._callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(handle)
    frames = task.get_stack()[-3:]  # the innermost
    where = " < ".join(f"{f.f_code.co_qualname} ({f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno})" for f in frames)
    return f"task {task.get_name()} running {task.get_coro().__qualname__}, now at {where or 'its end'}"


@pytest.fixture(autouse=True)
def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test in which the bot logged an error it did not expect (a test that expects one clears the log)."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and not r.name.startswith("tests.")]
    assert not errors, "\n".join(f"{r.name}: {r.getMessage()}" for r in errors)


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeDiscord(timeout=60.0) as fake:  # a bound for a failure, never reached by a passing test
        guild = fake.add_guild("Dream Club")
        dreams = guild.add_text_channel("dreams")
        lounge = guild.add_text_channel("lounge")
        mods = guild.add_text_channel("moderators")
        mod_role = guild.add_role("Moderators", discord.Permissions(manage_messages=True))
        admin_role = guild.add_role("Admins", discord.Permissions(administrator=True))
        vip = guild.add_role("VIP")
        admin = guild.add_member("admin", roles=[admin_role])
        config = {
            "database": {"path": str(tmp_path / "dreamqueue.db")},
            "engine": {"simulated": True, "simulated_seconds_per_step": 0.01},
            "discord": {
                "guild_ids": [guild.id],
                "owner_ids": [admin.id],
                "dream_channel_ids": [dreams.id],
                "moderator_role_ids": [mod_role.id],
                "admin_role_ids": [admin_role.id],
                "moderators_channel_id": mods.id,
                "progress_edit_interval_s": 1.0,
            },
            "scheduler": {"shutdown_grace_s": 5},
            "quotas": {
                "tiers": {
                    "default": {"burst": 8, "rate_per_hour": 60, "max_images": 4, "max_queued": 3},
                    "vip": {"roles": [vip.id], "burst": 60, "rate_per_hour": 600, "max_images": 9, "max_queued": 30},
                }
            },
        }
        world = World(
            fake=fake,
            guild=guild,
            dreams=dreams,
            lounge=lounge,
            mods=mods,
            alice=guild.add_member("alice"),
            bob=guild.add_member("bob"),
            carol=guild.add_member("carol", roles=[vip]),
            moderator=guild.add_member("mod", roles=[mod_role]),
            admin=admin,
            db_path=tmp_path / "dreamqueue.db",
            config=config,
            config_path=tmp_path / "config.yaml",
        )
        try:
            yield world
        finally:
            await world.stop()
            for app in world.apps:  # a test that failed half-way may leave one open
                await app.close()



@pytest.fixture
def other(world: World) -> Server:
    """A second served server (add before :meth:`World.start`); alice of the first server is in it too."""
    guild = world.fake.add_guild("Other Club")
    world.config["discord"]["guild_ids"] = [world.guild.id, guild.id]
    admins = guild.add_role("Server admins", discord.Permissions(administrator=True))
    mods = guild.add_role("Server mods", discord.Permissions(manage_messages=True))
    namesakes = [guild.add_role(name) for name in ("Admins", "Moderators", "VIP")]
    return Server(
        guild=guild,
        dreams=guild.add_text_channel("dreams"),
        mods=guild.add_text_channel("moderators"),
        admin=guild.add_member("b-admin", roles=[admins]),
        moderator=guild.add_member("b-mod", roles=[mods]),
        member=guild.add_member("b-member"),
        namesake=guild.add_member("b-namesake", roles=namesakes),
        alice=guild.join(world.alice.user),
    )
