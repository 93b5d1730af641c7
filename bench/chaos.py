"""Chaos bench: the real bot, killed again and again, must deliver every job once or tell its member why not.

    PYTHONPATH=. python bench/chaos.py [--members 20] [--minutes 2] [--kills 10] [--engine-crashes 5] [--seed 1]
    PYTHONPATH=. python bench/chaos.py --members 200 --minutes 10 --kills 50     # the full run

The bot runs as ``dreamqueue run`` in a child process (``bench/chaos_bot.py``)
with the simulated engine (batches of about a second), against a loopback fake
Discord in this process: one or two servers whose members submit ``/dream``
at random (``--rate`` a second, all together) for ``--minutes``. Meanwhile the
bench SIGKILLs the bot ``--kills`` times at random moments after it connects,
restarting it on the same SQLite file each time, and makes the engine's batch
crash ``--engine-crashes`` times. Then the members stop, the last bot finishes
the queue and is stopped with SIGTERM, and every admitted job is judged from
the journal and the fake's record (``bench/chaos_tally.py``). The counts are
printed; the exit status is 1 if a grid was posted twice or a job was lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path and bench/engine.py would shadow the engine package.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp
import yaml

from bench.chaos_tally import Tally, tally_run
from tests.fakediscord import FakeChannel, FakeDiscord, FakeMember

UNFINISHED = (
    "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
    " OR (state = 'done' AND result_message_id IS NULL AND undeliverable IS NULL)"
)


@dataclass(frozen=True)
class Plan:
    """One chaos run. Kills come at a random moment after each connection: within ``kill_within_events``
    events the fake records (a range), else spread at random over ``minutes``."""

    members: int = 20
    guilds: int = 2
    minutes: float = 2.0
    kills: int = 10
    engine_crashes: int = 5
    rate: float = 3.0
    """``/dream`` per second, all members together."""
    steps: int = 8
    seconds_per_step: float = 0.03
    """With ``steps``: eight one-image jobs make a batch of about two seconds, one of about a quarter."""
    kill_within_events: tuple[int, int] | None = None
    seed: int = 1
    bound_s: float = 600.0
    """Longest wait for any one thing (the bot connecting, the queue draining): reached only on a failure."""


@dataclass
class BotProcess:
    """The bot's child process, started again after each kill on the same config and database."""

    fake: FakeDiscord
    config: Path
    logs: Path
    bound_s: float
    starts: int = 0
    process: asyncio.subprocess.Process | None = None
    _log: TextIO | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Start a bot and return once it is connected to the fake's gateway."""
        before = self.fake.gateway.identifies
        self.starts += 1
        self._log = (self.logs / f"bot-{self.starts:03}.log").open("w")
        env = {**os.environ, "DISCORD_TOKEN": self.fake.token, "PYTHONPATH": str(ROOT)}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.chaos_bot", "--discord", self.fake.base_url, "--config", str(self.config),
            cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )
        process = self.process
        await self.fake.wait_until(
            lambda: process.returncode is not None or (self.fake.gateway.identifies > before and self.connected),
            self.bound_s,
        )
        if process.returncode is not None:
            raise RuntimeError(f"the bot exited with status {process.returncode}; see {self._log.name}")

    @property
    def connected(self) -> bool:
        return self.fake.gateway.connected

    def crash_engine(self) -> None:
        """Make the running (or next) engine batch crash."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGUSR1)

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
        await self.fake.wait_until(lambda: not self.connected, self.bound_s)  # the fake saw the socket close
        self.process = None
        if self._log is not None:
            self._log.close()

    def errors(self) -> list[str]:
        """The ERROR lines every bot process logged."""
        return [line.rstrip() for path in sorted(self.logs.glob("bot-*.log"))
                for line in path.read_text(errors="replace").splitlines() if " ERROR " in line]  # fmt: skip


def write_config(plan: Plan, fake: FakeDiscord, channels: list[FakeChannel], folder: Path, port: int) -> Path:
    """The bot's config: simulated engine, every server and channel, quotas that rarely refuse, and the
    health endpoint on ``port``."""
    config = {
        "database": {"path": str(folder / "chaos.db")},
        "engine": {"simulated": True, "simulated_seconds_per_step": plan.seconds_per_step, "max_batch_images": 8},
        "discord": {
            "guild_ids": [guild.id for guild in fake.guilds],
            "dream_channel_ids": [channel.id for channel in channels],
            "progress_edit_interval_s": 1.0,
        },
        "scheduler": {"shutdown_grace_s": 10},
        "quotas": {"tiers": {"default": {
            "burst": 40, "rate_per_hour": 36_000, "daily_images": 100_000, "max_images": 2, "max_queued": 2,
        }}},
        "logging": {"level": "WARNING"},
        "metrics": {"port": port},
    }  # fmt: skip
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def poll(check: Callable[[], Awaitable[bool]], bound_s: float, what: str) -> None:
    """Wait until ``check`` passes (asked ten times a second); TimeoutError naming ``what`` after ``bound_s``."""
    try:
        async with asyncio.timeout(bound_s):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise TimeoutError(f"no {what} after {bound_s:g} s") from None


async def drained(db_path: Path) -> bool:
    """No job left to run or to post."""
    def count() -> int:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            return conn.execute(UNFINISHED).fetchone()[0]
    return await asyncio.to_thread(count) == 0


async def ready(port: int) -> bool:
    """The bot's ``/readyz`` answers 200: engine ready, database writable, Discord connected and ready."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def members_dream(fake: FakeDiscord, members: list[tuple[FakeMember, FakeChannel]], plan: Plan,
                        rng: random.Random, stop: asyncio.Event) -> None:  # fmt: skip
    """Random members run ``/dream`` at ``plan.rate`` a second, while a bot is connected, until ``stop``."""
    sent = 0
    while not stop.is_set():
        await asyncio.sleep(rng.expovariate(plan.rate))  # the arrivals of a Poisson process
        if not fake.gateway.connected:
            continue  # Discord would tell the member the application did not respond
        member, channel = rng.choice(members)
        sent += 1
        try:
            await fake.slash(member, channel, "dream", prompt=f"chaos {sent} by {member.name}",
                             count=rng.randint(1, 2), steps=plan.steps)  # fmt: skip
        except (RuntimeError, ConnectionError):
            pass  # the bot died while it was being sent: the same as "did not respond"


def kill_moments(plan: Plan, fake: FakeDiscord, rng: random.Random, started: float) -> Callable[[int], float]:
    """How far into a bot's life to kill it: in events recorded since it connected, or in seconds."""
    def moment(kills_left: int) -> float:
        """For the last bot (``kills_left`` 0) how long it lives before members stop."""
        if plan.kill_within_events is not None:
            return rng.randint(*plan.kill_within_events)
        left = max(0.0, started + plan.minutes * 60 - time.monotonic())
        return rng.uniform(0, 2 * left / kills_left) if kills_left else left
    return moment


async def live_until(bot: BotProcess, plan: Plan, moment: float, crashes: int, rng: random.Random) -> None:
    """Let the bot live ``moment`` (events or seconds), crashing its engine ``crashes`` times on the way."""
    fake = bot.fake
    marks = sorted([rng.uniform(0, moment) for _ in range(crashes)] + [moment])
    base, begun = len(fake.events), time.monotonic()
    for index, mark in enumerate(marks):
        if plan.kill_within_events is not None:
            await fake.wait_until(lambda: len(fake.events) - base >= mark, plan.bound_s)
        else:
            await asyncio.sleep(max(0.0, begun + mark - time.monotonic()))  # the chaos's own timing
        if index < len(marks) - 1:
            bot.crash_engine()


async def run_chaos(plan: Plan, folder: Path, say: Callable[[str], None] = print) -> tuple[Tally, list[str]]:
    """Run ``plan`` with its files in ``folder``; return the tally and the ERROR lines the bots logged."""
    rng = random.Random(plan.seed)
    async with FakeDiscord(timeout=plan.bound_s) as fake:
        members: list[tuple[FakeMember, FakeChannel]] = []
        channels = []
        for g in range(plan.guilds):
            guild = fake.add_guild(f"Chaos {g + 1}")
            channels.append(channel := guild.add_text_channel("dreams"))
            members += [(guild.add_member(f"m{g + 1}-{n}"), channel) for n in range(g, plan.members, plan.guilds)]
        port = free_port()
        config = write_config(plan, fake, channels, folder, port)
        db_path = folder / "chaos.db"
        bot = BotProcess(fake, config, folder, plan.bound_s)
        await bot.start()
        started = time.monotonic()
        stop = asyncio.Event()
        load = asyncio.create_task(members_dream(fake, members, plan, rng, stop), name="members")
        crashes = [0] * (plan.kills + 1)
        for _ in range(plan.engine_crashes):
            crashes[rng.randrange(len(crashes))] += 1
        moment = kill_moments(plan, fake, rng, started)
        try:
            for kill in range(plan.kills):
                await live_until(bot, plan, moment(plan.kills - kill), crashes[kill], rng)
                await bot.kill()
                say(f"{time.monotonic() - started:6.1f}s kill {kill + 1}/{plan.kills}: {len(fake.interactions)} sent")
                await bot.start()
            await live_until(bot, plan, moment(0), crashes[-1], rng)
        finally:
            stop.set()
            await load
        say(f"{time.monotonic() - started:6.1f}s members stopped; the last bot finishes the queue")
        await poll(lambda: ready(port), plan.bound_s, "ready bot")  # it stops as a bot that was up, not starting
        await poll(lambda: drained(db_path), plan.bound_s, "end of the queue")
        await bot.stop()
        say(f"{time.monotonic() - started:6.1f}s done: {bot.starts} bot starts")
        return tally_run(db_path, fake), bot.errors()


def main() -> int:
    """Parse the options, run, print the counts; 1 if a grid was posted twice or a job lost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Plan()
    parser.add_argument("--members", type=int, default=defaults.members)
    parser.add_argument("--guilds", type=int, choices=(1, 2), default=defaults.guilds)
    parser.add_argument("--minutes", type=float, default=defaults.minutes, help="how long members submit")
    parser.add_argument("--kills", type=int, default=defaults.kills, help="SIGKILLs of the bot")
    parser.add_argument("--engine-crashes", type=int, default=defaults.engine_crashes)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="/dream a second, all members")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    plan = Plan(members=args.members, guilds=args.guilds, minutes=args.minutes, kills=args.kills,
                engine_crashes=args.engine_crashes, rate=args.rate, seed=args.seed)  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="dreamqueue-chaos-"))
    print(f"{plan}\nfiles (database, bot logs): {folder}")
    tally, errors = asyncio.run(run_chaos(plan, folder))
    print("\n".join(tally.lines()))
    print(f"bot ERROR log lines: {len(errors)}", *errors[:10], sep="\n  ")
    return 1 if tally.posted_twice or tally.lost else 0


if __name__ == "__main__":
    sys.exit(main())
