"""Benchmark the prompt filter: checks per second and latency percentiles with 10,000 rules.

    python bench/filter.py [--rules 10000] [--prompts 5000] [--seed 1]

Rules are the shipped categories plus generated keywords in every AutoMod form
(whole word, prefix, suffix, anywhere, two-word phrases) and allow entries;
prompts are realistic Stable Diffusion prompts: comma-separated tags, weights,
artists, sizes and seeds, some with an evasion or a phone number.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=5_000)
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

    wall, cpu = statistics.quantiles(latencies_us, n=100), statistics.quantiles(cpu_us, n=100)
    print(f"rules: {rules} (keywords, regex and allow entries; build {build_s:.2f} s, validation included)")
    print(f"prompts: {len(prompts)}, mean {statistics.fmean(map(len, prompts)):.0f} chars;"
          f" blocked {blocked}, flagged {flagged}")  # fmt: skip
    print(f"throughput: {len(prompts) / total_s:,.0f} prompts/s")
    print(f"latency (wall): p50 {wall[49]:.0f} us, p99 {wall[98]:.0f} us, max {max(latencies_us):.0f} us")
    # CPU time of this thread leaves out time the OS gave to other processes: the filter's own cost on a busy machine.
    print(f"latency (cpu):  p50 {cpu[49]:.0f} us, p99 {cpu[98]:.0f} us, max {max(cpu_us):.0f} us")


if __name__ == "__main__":
    main()
