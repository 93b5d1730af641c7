"""Chaos bench: the real bot, killed again and again, must deliver every job once or tell its member why not.

    PYTHONPATH=. python bench/chaos.py [--members 20] [--minutes 2] [--kills 10] [--engine-crashes 5] [--seed 1]
    PYTHONPATH=. python bench/chaos.py --members 200 --minutes 10 --kills 50     # the full run
    PYTHONPATH=. python bench/chaos.py --kills 20 --kill-after-actions 0 60      # kills by the bot's pace

The bot runs as ``dreamqueue run`` in a child process (``bench/chaos_bot.py``)
with the simulated engine (batches of about a second), against a loopback fake
Discord in this process: one or two servers whose members submit ``/dream``
at random (``--rate`` a second, all together) for ``--minutes``. Meanwhile the
bench SIGKILLs the bot ``--kills`` times at random moments after it connects
(or after a random number of its actions), restarting it on the same SQLite
file each time, and makes the engine's batch crash ``--engine-crashes`` times.
Then the members stop, the last bot finishes the queue and is stopped with
SIGTERM, and every admitted job is judged from the journal and the fake's
record (``bench/chaos_tally.py``). The counts are printed; the exit status is 1
if a grid was posted twice or a job was lost. The short version in the test
suite (``tests/e2e/test_chaos.py``) aims its first kills (see :data:`KillAt`).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":
    # Run as a script, this folder comes first on sys.path and bench/engine.py would shadow the engine package.
    sys.path[:] = [str(HERE.parent)] + [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import argparse
import asyncio
import random
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import yaml

from bench.chaos_bot import BotProcess, drained, freeze_running, ready, unfinished
from bench.chaos_tally import Tally, tally_run
from tests.fakediscord import FakeChannel, FakeDiscord, FakeMember

KillAt = Literal["connected", "running", "rerunning"] | tuple[int, int] | None
"""When to kill a bot: as soon as it connects; while the journal shows a job running; while it shows one
running again after an interruption (so the next start gives it up); after a random number, in a range, of
the actions the fake records from it (messages posted, edited, answered) since it connected; or (None) at a
random time, the kills spread over ``minutes``."""


@dataclass(frozen=True)
class Plan:
    """One chaos run: ``kill_at`` names each kill's moment; without it, ``kills`` kills at random times."""

    members: int = 20
    guilds: int = 2
    minutes: float = 2.0
    """How long members submit, at least until the last kill."""
    kills: int = 10
    kill_at: tuple[KillAt, ...] = ()
    engine_crashes: int = 5
    """Spread at random over the bots' lives that have a length (a time or a range of actions)."""
    rate: float = 4.0
    """``/dream`` per second, all members together."""
    steps: int = 8
    seconds_per_step: float = 0.015
    """With ``steps``: a full batch (eight images) takes about a second."""
    seed: int = 1
    log_level: str = "WARNING"
    """The bots' log level (their logs are kept in the run's folder)."""
    bound_s: float = 600.0
    """Longest wait for any one thing (the bot connecting, the queue draining): reached only on a failure."""

    @property
    def schedule(self) -> tuple[KillAt, ...]:
        """Every kill's moment, in order."""
        return self.kill_at or (None,) * self.kills


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
        "logging": {"level": plan.log_level},
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


async def live(bot: BotProcess, plan: Plan, db_path: Path, kill_at: KillAt, life: float, crashes: int,
               rng: random.Random) -> None:  # fmt: skip
    """Return when the bot is to be killed, by ``kill_at``; a ``life`` (seconds, or actions since it connected)
    comes with ``crashes`` engine crashes at random moments of it."""
    if kill_at in ("running", "rerunning"):
        await freeze_running(bot, db_path, 1 if kill_at == "running" else 2, plan.bound_s)
        return
    await bot.connected()
    fake = bot.fake
    marks = sorted([rng.uniform(0, life) for _ in range(crashes)] + [life])
    base, begun = len(fake.events), time.monotonic()
    for index, mark in enumerate(marks):
        if isinstance(kill_at, tuple):
            await fake.wait_until(lambda mark=mark: len(fake.events) - base >= mark, plan.bound_s)
        else:
            await asyncio.sleep(max(0.0, begun + mark - time.monotonic()))  # the chaos's own timing
        if index < len(marks) - 1:
            bot.crash_engine()


def life_of(kill_at: KillAt, kills_left: int, deadline: float, rng: random.Random) -> float:
    """How long a bot lives: actions in ``kill_at``'s range, or a random share of the time left (all of it for
    the last bot, ``kills_left`` 0); nothing for the other kinds."""
    if isinstance(kill_at, tuple):
        return rng.randint(*kill_at)
    left = max(0.0, deadline - time.monotonic())
    if kill_at is None:
        return rng.uniform(0, 2 * left / kills_left) if kills_left else left
    return 0.0


def populate(fake: FakeDiscord, plan: Plan) -> tuple[list[tuple[FakeMember, FakeChannel]], list[FakeChannel]]:
    """The servers, each with a dream channel, and the members shared out among them."""
    members: list[tuple[FakeMember, FakeChannel]] = []
    channels = []
    for g in range(plan.guilds):
        guild = fake.add_guild(f"Chaos {g + 1}")
        channels.append(channel := guild.add_text_channel("dreams"))
        members += [(guild.add_member(f"m{g + 1}-{n}"), channel) for n in range(g, plan.members, plan.guilds)]
    return members, channels


async def rampage(bot: BotProcess, plan: Plan, members: list[tuple[FakeMember, FakeChannel]], db_path: Path,
                  rng: random.Random, say: Callable[[str], None]) -> None:  # fmt: skip
    """Members dream while the bot is killed and restarted by ``plan``; return when they have stopped."""
    started = time.monotonic()
    deadline = started + plan.minutes * 60
    stop = asyncio.Event()
    load = asyncio.create_task(members_dream(bot.fake, members, plan, rng, stop), name="members")
    schedule = plan.schedule
    timed = [i for i, kill_at in enumerate((*schedule, None)) if kill_at is None or isinstance(kill_at, tuple)]
    crashes = [0] * (len(schedule) + 1)
    for _ in range(plan.engine_crashes):
        crashes[rng.choice(timed)] += 1
    try:
        for kill, kill_at in enumerate(schedule):
            await live(bot, plan, db_path, kill_at, life_of(kill_at, len(schedule) - kill, deadline, rng),
                       crashes[kill], rng)  # fmt: skip
            await bot.kill()
            say(f"{time.monotonic() - started:6.1f}s kill {kill + 1}/{len(schedule)} ({kill_at or 'timed'}):"
                f" {len(bot.fake.interactions)} /dream sent")  # fmt: skip
            await bot.start()
        await live(bot, plan, db_path, None, life_of(None, 0, deadline, rng), crashes[-1], rng)
    finally:
        stop.set()
        await load
    say(f"{time.monotonic() - started:6.1f}s members stopped; the last bot finishes the queue")


async def run_chaos(plan: Plan, folder: Path, say: Callable[[str], None] = print) -> tuple[Tally, list[str]]:
    """Run ``plan`` with its files in ``folder``; return the tally and the ERROR lines the bots logged."""
    rng = random.Random(plan.seed)
    async with FakeDiscord(timeout=plan.bound_s) as fake:
        members, channels = populate(fake, plan)
        port = free_port()
        db_path = folder / "chaos.db"
        bot = BotProcess(fake, write_config(plan, fake, channels, folder, port), folder, plan.bound_s)
        try:
            await bot.start()
            await bot.connected()  # with its commands registered
            await rampage(bot, plan, members, db_path, rng, say)
            await poll(lambda: ready(port), plan.bound_s, "ready bot")  # it stops as a bot that was up, not starting
            try:
                await poll(lambda: drained(db_path), plan.bound_s, "end of the queue")
            except TimeoutError as exc:  # say what is stuck, what went wrong, and what the bot said last
                stuck = "\n".join(await asyncio.to_thread(unfinished, db_path))
                errors = "\n".join(bot.errors()[-10:])
                raise TimeoutError(f"{exc}; unfinished:\n{stuck}\nthe bots' last errors:\n{errors}\n"
                                   f"the last bot's log ends:\n{bot.log_tail()}") from None
            await bot.stop()
        finally:
            await bot.kill()  # after a failure: no bot is left running (after a stop, nothing to do)
        say(f"done: {bot.starts} bot starts")
        # In a thread: the bot is gone, nothing changes the record, and the event loop stays free.
        return await asyncio.to_thread(tally_run, db_path, fake), bot.errors()


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
    parser.add_argument("--steps", type=int, default=defaults.steps, help="steps of every job")
    parser.add_argument("--seconds-per-step", type=float, default=defaults.seconds_per_step,
                        help="the simulated engine's seconds per image step")  # fmt: skip
    parser.add_argument("--kill-after-actions", type=int, nargs=2, metavar=("LEAST", "MOST"),
                        help="kill each bot after this many of its actions (posts, edits, answers) since it"
                             " connected, not at a random time")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--log-level", default=defaults.log_level, choices=("DEBUG", "INFO", "WARNING"))
    args = parser.parse_args()
    plan = Plan(members=args.members, guilds=args.guilds, minutes=args.minutes, kills=args.kills,
                engine_crashes=args.engine_crashes, rate=args.rate, steps=args.steps,
                seconds_per_step=args.seconds_per_step, seed=args.seed, log_level=args.log_level,
                kill_at=(tuple(args.kill_after_actions),) * args.kills if args.kill_after_actions else ())  # fmt: skip
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show as they come, into a file too
    folder = Path(tempfile.mkdtemp(prefix="dreamqueue-chaos-"))
    print(f"{plan}\nfiles (database, bot logs): {folder}")
    tally, errors = asyncio.run(run_chaos(plan, folder))
    print("\n".join(tally.lines()))
    print(f"bot ERROR log lines: {len(errors)}", *errors[:10], sep="\n  ")
    return 1 if tally.posted_twice or tally.lost else 0


if __name__ == "__main__":
    sys.exit(main())
