"""The real bot (``dreamqueue run``) in a process of its own, pointed at a loopback fake Discord.

    python -m bench.chaos_bot --discord http://127.0.0.1:PORT --config CONFIG

The chaos bench starts this as a child process and kills it. Only discord.py's
addresses are changed here, as the fake does for a bot in its own process; the
token comes from ``DISCORD_TOKEN``. With ``engine.simulated``, SIGUSR1 makes the
engine's next batch crash, as an engine process dying mid-batch would.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

import bot.app
from bot.cli import main as dreamqueue
from bot.settings import Settings
from engine.types import EngineClient


def point_discord_at(url: str) -> None:
    """Send discord.py's REST calls and gateway connection to the fake at ``url`` (http://host:port)."""
    base = yarl.URL(url)
    Route.BASE = str(base / "api" / "v10")
    DiscordWebSocket.DEFAULT_GATEWAY = base.with_scheme("ws") / "gateway"


def crash_engine_on_sigusr1() -> None:
    """Make SIGUSR1 crash the simulated engine's next batch (the bench's engine kill)."""
    engines: list[EngineClient] = []
    make_engine = bot.app.make_engine

    def keep(settings: Settings) -> EngineClient:
        engine = make_engine(settings)
        engines.append(engine)
        return engine

    def crash(signum: int, frame: FrameType | None) -> None:
        for engine in engines:
            crash_next_batch = getattr(engine, "crash_next_batch", None)  # only the simulated engine has one
            if crash_next_batch is not None:
                crash_next_batch(error="the engine process died")

    bot.app.make_engine = keep
    signal.signal(signal.SIGUSR1, crash)


def main() -> int:
    """Run the bot against the fake until SIGTERM (or until killed); return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discord", required=True, help="the fake Discord's address, http://127.0.0.1:PORT")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    point_discord_at(args.discord)
    crash_engine_on_sigusr1()
    return dreamqueue(["run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
