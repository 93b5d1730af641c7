"""Benchmark the prompt filter: checks per second and latency percentiles with 10,000 rules, long prompts, and
how long a rule rebuild stalls the event loop.

    python bench/filter.py [--rules 10000] [--prompts 5000] [--long 500] [--changes 50] [--seed 1]

Rules are the shipped categories plus generated keywords in every AutoMod form
(whole word, prefix, suffix, anywhere, two-word phrases) and allow entries;
prompts are realistic Stable Diffusion prompts: comma-separated tags, weights,
artists, sizes and seeds, some with an evasion or a phone number. Long prompts
are 1,500 characters of the same with numbers and other scripts mixed in.
Rebuilds run as the bot runs them (in a thread, beside a busy event loop); a
probe task that sleeps 1 ms in a loop records the longest gap between its wake-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable

from bot.filter_rules import GuildFilters, RuleChange, long_lived
from moderation import FilterSettings, PromptFilter

SYLLABLES = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "bra", "cle", "dri", "fro", "glu", "pla", "sto", "tre",
    "qui", "xan", "yor", "wel",
]  # fmt: skip

SUBJECTS = [
    "a portrait of an old fisherman", "a cyberpunk city street at night", "a red fox in a snowy forest",
    "an astronaut riding a horse", "a cozy cabin by a lake", "a dragon perched on a castle tower",
    "a bowl of ramen", "a steampunk airship above the clouds", "a cat wearing a wizard hat",
    "a lighthouse in a storm", "a samurai under cherry blossoms", "an abandoned greenhouse overgrown with plants",
]  # fmt: skip
STYLES = [
    "(masterpiece:1.2)", "best quality", "((highly detailed))", "oil painting", "digital art", "concept art",
    "by greg rutkowski", "by alphonse mucha", "trending on artstation", "octane render", "unreal engine 5",
    "35mm film", "bokeh", "volumetric lighting", "golden hour", "8k", "4k uhd", "sharp focus", "[blurry|noisy]",
    "studio ghibli style", "watercolor", "1girl", "2boys", "512x768", "seed 4155550132", "cinematic lighting",
]  # fmt: skip
SPICE = ["n u d e", "s3x", "pikachu", "call (415) 555-0132", "grapes", "therapist", "Scunthorpe", "gore-tex jacket"]
MIXED = [
    "Москва зимой", "東京の夜景", "Αθήνα στο ηλιοβασίλεμα", "القاهرة ليلا", "서울의 밤", "🌸 cherry blossom 🌸",
    "seed 1234567890", "1920x1080", "v5.2", "ISBN 978-3-16-148410-0", "f/1.8 85mm", "(detailed:1.3)", "2077",
    "a n u d e", "nu de", "ꞥude", "call me on 07700 900123", "10 Downing Street, London SW1A 2AA",
]  # fmt: skip
LONG_CHARS = 1500


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def generated_rules(count: int, rng: random.Random) -> dict:
    """``count`` keywords over 20 categories, in every AutoMod form, with an allow entry per 20."""
    categories: dict[str, dict[str, list[str]]] = {}
    forms = ("{}", "{}*", "*{}", "*{}*", "{} {}")
    for i in range(count):
        rules = categories.setdefault(f"bench{i % 20}", {"keywords": [], "allow": []})
        form = forms[i % len(forms)]
        rules["keywords"].append(form.format(word(rng), word(rng)))
        if i % 20 == 0:
            rules["allow"].append(word(rng) + "*")
    return categories


def prompt(rng: random.Random) -> str:
    parts = [rng.choice(SUBJECTS), *rng.sample(STYLES, rng.randint(4, 12))]
    if rng.random() < 0.2:
        parts.insert(rng.randrange(len(parts)), rng.choice(SPICE))
    return ", ".join(parts)


def long_prompt(rng: random.Random) -> str:
    """A 1,500-character prompt: tags, numbers and other scripts."""
    parts: list[str] = []
    while sum(map(len, parts)) + 2 * len(parts) < LONG_CHARS:
        parts.append(rng.choice(MIXED) if rng.random() < 0.3 else prompt(rng))
    return ", ".join(parts)[:LONG_CHARS]


def percentiles(samples_us: list[float]) -> str:
    cuts = statistics.quantiles(samples_us, n=100, method="inclusive")
    return f"p50 {cuts[49]:.0f} us, p99 {cuts[98]:.0f} us, max {max(samples_us):.0f} us"


async def longest_stall(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Seconds ``work`` took and the longest event-loop stall meanwhile, from a task that sleeps 1 ms in a loop."""
    done = False
    worst = 0.0

    async def probe() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done = True
    await task
    return took, worst


class StoredChanges:
    """The stored rule changes of one server, in memory (the bench measures building, not SQLite)."""

    def __init__(self, changes: list[RuleChange]) -> None:
        self.stored = changes

    async def changes(self, guild_id: int) -> list[RuleChange]:
        return list(self.stored)

    async def guilds(self) -> set[int]:
        return {1}

    async def record(self, guild_id: int, change: RuleChange) -> None:
        self.stored.append(change)


def stored_changes(count: int, settings: FilterSettings, rng: random.Random) -> list[RuleChange]:
    """``count`` admin changes: new rules, some removed again, and removals of configured ones."""
    changes: list[RuleChange] = []
    configured = [(name, rule) for name, rules in settings.categories.items() for rule in rules.keywords]
    while len(changes) < count:
        kind = rng.random()
        if kind < 0.5:
            changes.append(RuleChange(1, True, f"bench{rng.randrange(20)}", "keywords", word(rng)))
        elif kind < 0.75 and changes and changes[-1].add:
            changes.append(RuleChange(1, False, changes[-1].category, "keywords", changes[-1].rule))
        else:
            name, rule = rng.choice(configured)
            changes.append(RuleChange(1, False, name, "keywords", rule))
    return changes


async def rebuilds(settings: FilterSettings, changes: list[RuleChange], rng: random.Random) -> None:
    """Start-up build, start-up replay of stored changes, a live change and a reload, each beside the event loop."""
    base: PromptFilter | None = None
    # What a busy machine does to the probe with nothing else running, to read the figures below against.
    _, idle = await longest_stall(lambda: asyncio.sleep(1.0))
    print(f"rebuild: idle event loop for 1 s (baseline): longest stall {idle * 1000:.1f} ms")

    async def build() -> None:
        nonlocal base
        with long_lived():  # as bot.app builds the config's filter
            base = await asyncio.to_thread(PromptFilter, settings)

    took, stall = await longest_stall(build)
    print(f"rebuild: start-up build: {took:.2f} s, longest event-loop stall {stall * 1000:.1f} ms")
    assert base is not None
    filters = GuildFilters(base, StoredChanges(changes), lambda guild_id: ())  # type: ignore[arg-type]
    await filters.load()
    took, stall = await longest_stall(lambda: filters.get(1))
    print(f"rebuild: start-up replay of {len(changes)} stored changes: {took:.2f} s,"
          f" longest event-loop stall {stall * 1000:.1f} ms")  # fmt: skip
    change = RuleChange(1, True, "bench3", "keywords", word(rng))
    took, stall = await longest_stall(lambda: filters.change(1, change))
    print(f"rebuild: /admin filter add: {took:.2f} s, longest event-loop stall {stall * 1000:.1f} ms")

    async def reload() -> None:
        await filters.rebase(await asyncio.to_thread(PromptFilter, settings))
        await filters.get(1)

    took, stall = await longest_stall(reload)
    print(f"rebuild: /admin reload: {took:.2f} s, longest event-loop stall {stall * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=5_000)
    parser.add_argument("--long", type=int, default=500, help="1,500-character prompts to check")
    parser.add_argument("--changes", type=int, default=50, help="stored rule changes replayed in the rebuild")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    started = time.perf_counter()
    settings = FilterSettings.model_validate({"categories": generated_rules(args.rules, rng)})
    prompt_filter = PromptFilter(settings)
    build_s = time.perf_counter() - started
    rules = sum(len(c.keywords) + len(c.regex) + len(c.allow) for c in settings.categories.values())

    prompts = [prompt(rng) for _ in range(args.prompts)]
    for text in prompts[:200]:  # warm caches
        prompt_filter.check(text)
    latencies_us, cpu_us = [], []
    blocked = flagged = 0
    started = time.perf_counter()
    for text in prompts:
        begin, begin_cpu = time.perf_counter_ns(), time.thread_time_ns()
        verdict = prompt_filter.check(text)
        cpu_us.append((time.thread_time_ns() - begin_cpu) / 1000)
        latencies_us.append((time.perf_counter_ns() - begin) / 1000)
        blocked += verdict.action == "block"
        flagged += verdict.action == "flag"
    total_s = time.perf_counter() - started

    print(f"rules: {rules} (keywords, regex and allow entries; build {build_s:.2f} s, validation included)")
    print(f"prompts: {len(prompts)}, mean {statistics.fmean(map(len, prompts)):.0f} chars;"
          f" blocked {blocked}, flagged {flagged}")  # fmt: skip
    print(f"throughput: {len(prompts) / total_s:,.0f} prompts/s")
    print(f"latency (wall): {percentiles(latencies_us)}")
    # CPU time of this thread leaves out time the OS gave to other processes: the filter's own cost on a busy machine.
    print(f"latency (cpu):  {percentiles(cpu_us)}")

    long_prompts = [long_prompt(rng) for _ in range(args.long)]
    long_us, long_cpu_us = [], []
    blocked = 0
    for text in long_prompts:
        begin, begin_cpu = time.perf_counter_ns(), time.thread_time_ns()
        blocked += not prompt_filter.check(text).allowed
        long_cpu_us.append((time.thread_time_ns() - begin_cpu) / 1000)
        long_us.append((time.perf_counter_ns() - begin) / 1000)
    print(f"long prompts: {len(long_prompts)} of {LONG_CHARS} chars (digits, mixed scripts); blocked {blocked}")
    print(f"long latency (wall): {percentiles(long_us)}")
    print(f"long latency (cpu):  {percentiles(long_cpu_us)}")

    asyncio.run(rebuilds(settings, stored_changes(args.changes, settings, rng), rng))


if __name__ == "__main__":
    main()
