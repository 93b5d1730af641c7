"""The real bot (``dreamqueue run``) in a process of its own, pointed at a loopback fake Discord.

    python -m bench.chaos_bot --discord http://127.0.0.1:PORT --config CONFIG

The chaos bench starts this as a child process (:class:`BotProcess`), reads how
it is doing (its journal, its ``/readyz``) with the functions here, and kills
it. Only discord.py's addresses are changed here, as the fake does for a bot in
its own process; the token comes from ``DISCORD_TOKEN``. With
``engine.simulated``, SIGUSR1 makes the engine's next batch crash, as an engine
process dying mid-batch would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

import aiohttp
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

import bot.app
from bot.cli import main as dreamqueue
from bot.settings import Settings
from engine.types import EngineClient
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent


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


@dataclass
class BotProcess:
    """The parent's handle on the bot's child process, started again after each kill on the same config."""

    fake: FakeDiscord
    config: Path
    logs: Path
    """Folder of one log file per start."""
    bound_s: float
    starts: int = 0
    process: asyncio.subprocess.Process | None = None
    _identifies: int = 0
    _log: TextIO | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Start a bot (it connects to the fake in its own time)."""
        self._identifies = self.fake.gateway.identifies
        self.starts += 1
        self._log = (self.logs / f"bot-{self.starts:03}.log").open("w")
        # Unbuffered: a SIGKILL must not take the last lines of the log with it.
        env = {**os.environ, "DISCORD_TOKEN": self.fake.token, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.chaos_bot", "--discord", self.fake.base_url, "--config", str(self.config),
            cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )

    async def connected(self) -> None:
        """Return once this start's bot is connected to the fake's gateway; raise if it exited instead."""
        process = self.process
        assert process is not None, "no bot started"
        await self.fake.wait_until(
            lambda: process.returncode is not None
            or (self.fake.gateway.identifies > self._identifies and self.fake.gateway.connected),
            self.bound_s,
        )
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with status {process.returncode}; see {self.logs}")

    def crash_engine(self) -> None:
        """Make the running (or next) engine batch crash (call once connected: the handler is set by then)."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGUSR1)

    def freeze(self) -> None:
        """SIGSTOP: the bot stops where it is, its journal as last committed, until :meth:`thaw` or a kill."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen bot goes on."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGCONT)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM: the bot's own clean shutdown."""
        await self._end(signal.SIGTERM)

    async def _end(self, signum: int) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signum)
        await asyncio.wait_for(self.process.wait(), self.bound_s)
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.fake.wait_until(lambda: not self.fake.gateway.connected, self.bound_s)  # its socket closed
        self.process = None
        if self._log is not None:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the newest start's log."""
        newest = self.logs / f"bot-{self.starts:03}.log"
        return "\n".join(newest.read_text(errors="replace").splitlines()[-lines:]) if newest.exists() else ""

    def errors(self) -> list[str]:
        """The ERROR lines every bot process logged."""
        return [line.rstrip() for path in sorted(self.logs.glob("bot-*.log"))
                for line in path.read_text(errors="replace").splitlines() if " ERROR " in line]  # fmt: skip


UNFINISHED = "state IN ('queued', 'running') OR (state = 'done' AND result_message_id IS NULL AND undeliverable IS NULL)"
"""Jobs left to run or to post."""


def unfinished(db_path: Path) -> list[str]:
    """The jobs :data:`UNFINISHED` counts, a line each with what the journal knows of them (for a stalled run)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT id, guild_id, state, attempts, (SELECT count(*) FROM job_images i WHERE i.job_id = jobs.id)"
            f" FROM jobs WHERE {UNFINISHED} ORDER BY id"
        ).fetchall()
    return [f"job {job} (server {guild}): {state}, attempt {attempts}, {images} images stored"
            for job, guild, state, attempts, images in rows]  # fmt: skip


async def drained(db_path: Path) -> bool:
    """No job left to run or to post."""
    def count() -> int:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            return conn.execute(f"SELECT count(*) FROM jobs WHERE {UNFINISHED}").fetchone()[0]
    return await asyncio.to_thread(count) == 0


async def ready(port: int) -> bool:
    """The bot's ``/readyz`` answers 200: engine ready, database writable, Discord connected and ready."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def running(db_path: Path, attempts: int) -> bool:
    """The journal shows a job running its ``attempts``-th time or later."""
    sql = "SELECT 1 FROM jobs WHERE state = 'running' AND attempts >= ? LIMIT 1"
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return conn.execute(sql, (attempts,)).fetchone() is not None


def wait_running(db_path: Path, attempts: int, bound_s: float) -> None:
    """Block until :func:`running` (run it in a thread); asked every 10 ms, as a job runs for a fraction of a
    second. TimeoutError after ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while not running(db_path, attempts):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no job running its attempt {attempts} after {bound_s:g} s")
        time.sleep(0.01)


async def freeze_running(bot: BotProcess, db_path: Path, attempts: int, bound_s: float) -> None:
    """Return with the bot frozen while its journal shows a job running its ``attempts``-th time or later.

    A job seen running may end before a kill lands; frozen, the bot cannot end it, so the kill that follows
    hits it running.
    """
    while True:
        await asyncio.to_thread(wait_running, db_path, attempts, bound_s)
        bot.freeze()
        if await asyncio.to_thread(running, db_path, attempts):
            return
        bot.thaw()


def die_with_parent() -> None:
    """Exit at once when stdin (a pipe the parent holds open and never writes) closes: a bench that dies
    leaves no bot behind, reconnecting to a fake that is gone."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its lock, and the
        # interpreter's shutdown then dies with a fatal error instead of exiting.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    """Run the bot against the fake until SIGTERM (or until killed, or its parent dies); return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discord", required=True, help="the fake Discord's address, http://127.0.0.1:PORT")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    die_with_parent()
    point_discord_at(args.discord)
    crash_engine_on_sigusr1()
    return dreamqueue(["run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
