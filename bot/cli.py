"""The ``dreamqueue`` command line: run the bot, generate one grid, make the tiny model, back up, check prompts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from bot.settings import ConfigError, Settings, load_settings
from engine.types import MAX_SEED, SAMPLERS, GenerationParams, JobRequest, Outcome, RequestError

log = logging.getLogger("dreamqueue")


class CommandError(Exception):
    """A command cannot go on; the message tells the operator what to do."""


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``512x768``)."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"size must look like 512x512, got {text!r}")
    return int(width), int(height)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="config file (default: ./config.yaml)")
    parser = argparse.ArgumentParser(prog="dreamqueue", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dreamqueue {version('dreamqueue')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", parents=[common], help="start the Discord bot (token from DISCORD_TOKEN)")

    gen = commands.add_parser("generate", parents=[common], help="generate one grid through the engine process")
    gen.add_argument("prompt")
    gen.add_argument("--negative", default="", help="negative prompt")
    gen.add_argument("-n", "--count", type=int, default=4, help="number of images (1-9)")
    gen.add_argument("--seed", type=int, help="first seed; image i uses seed+i (default: random)")
    gen.add_argument("--steps", type=int, default=GenerationParams.steps)
    gen.add_argument("--guidance", type=float, default=GenerationParams.guidance)
    gen.add_argument("--size", type=_size, default=(512, 512), metavar="WxH")
    gen.add_argument("--sampler", choices=SAMPLERS, help="default: engine.default_sampler")
    gen.add_argument("--model", help="model folder or Hugging Face id (overrides engine.model)")
    gen.add_argument("-o", "--output", type=Path, default=Path("grid.png"), help="a .png, .jpg or .jpeg file")
    gen.add_argument("--no-filter", action="store_true", help="do not check the prompts against the prompt filter")

    tiny = commands.add_parser("make-tiny-model", help="write a tiny random Stable Diffusion pipeline (tests, demos)")
    tiny.add_argument("dest", type=Path)
    tiny.add_argument("--arch", choices=("sd", "sdxl"), default="sd", help="Stable Diffusion 1.x (default) or SDXL")

    backup = commands.add_parser("backup", parents=[common], help="copy the live database with SQLite's online backup")
    backup.add_argument("dest", type=Path)

    check = commands.add_parser(
        "check-prompt", parents=[common],
        help="print one JSON verdict per prompt ('-' reads stdin: a prompt, or a JSON object with prompt and negative,"
             " per line)",
    )  # fmt: skip
    check.add_argument("prompts", nargs="*", metavar="PROMPT")
    check.add_argument("--negative", default="", metavar="TEXT",
                       help="negative prompt checked with each prompt; its verdict is printed under \"negative\"")

    forget = commands.add_parser("forget", parents=[common],
                                 help="delete a user's prompts, flags and flagged images in every server (audited)")
    forget.add_argument("user_id", type=int, metavar="USER_ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dreamqueue`` console script and ``python -m bot``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "make-tiny-model":
            return _make_tiny_model(args.dest, args.arch)
        settings = load_settings(args.config)
        logging.getLogger().setLevel(settings.logging.level)
        if args.command == "run":
            from bot.app import run_bot  # the Discord stack is only imported to run the bot

            return run_bot(settings, args.config)
        if args.command == "generate":
            return asyncio.run(_generate(settings, args))
        if args.command == "backup":
            return asyncio.run(_backup(settings, args.dest))
        if args.command == "check-prompt":
            return _check_prompts(settings, args.prompts, args.negative)
        if args.command == "forget":
            return asyncio.run(_forget(settings, args.user_id))
    except (ConfigError, CommandError, RequestError) as exc:
        print(f"dreamqueue: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


def _make_tiny_model(dest: Path, arch: str = "sd") -> int:
    # Imports torch: only for this command.
    if arch == "sdxl":
        from engine.tiny_sdxl import write_tiny_sdxl as write
    else:
        from engine.tiny import write_tiny_model as write

    write(dest)
    print(f"wrote a tiny random {'SDXL' if arch == 'sdxl' else 'Stable Diffusion'} pipeline to {dest}")
    print(f"use it: set engine.model: {dest.resolve()} in config.yaml, or pass --model {dest} to generate")
    return 0


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from engine.client import EngineProcess, EngineStartError
    from engine.grid import make_grid, to_jpeg
    from engine.pnginfo import format_parameters, model_label

    engine_settings = settings.engine
    if args.model:
        engine_settings = engine_settings.model_copy(update={"model": args.model})
    output_format = _output_format(args.output)
    _check_prompts_allowed(settings, args)
    first = args.seed if args.seed is not None else random.randint(0, MAX_SEED)
    width, height = args.size
    params = GenerationParams(width, height, args.steps, args.guidance, args.sampler or engine_settings.default_sampler)
    request = JobRequest("cli", args.prompt, tuple(first + i for i in range(args.count)), params, args.negative)
    request.validate(engine_settings.limits)  # RequestError names the field

    started = time.perf_counter()
    try:
        async with EngineProcess(engine_settings) as engine:
            ready = time.perf_counter()
            [result] = await engine.generate([request])
    except EngineStartError as exc:
        raise CommandError(str(exc)) from None
    if result.outcome is not Outcome.DONE:
        raise CommandError(f"generation {result.outcome}: {result.error}")
    parameters = format_parameters(args.prompt, args.negative, params, request.seeds, model_label(engine_settings.model or ""))
    grid = make_grid(result.images, parameters)
    args.output.write_bytes(grid.png if output_format == "PNG" else await asyncio.to_thread(to_jpeg, grid.png))
    print(f"wrote {args.output} ({grid.columns}x{grid.rows} grid, {len(grid.png)} bytes)")
    print(f"seeds: {', '.join(str(seed) for seed in request.seeds)}")
    print(f"engine start {ready - started:.2f} s, generation {result.seconds:.2f} s")
    return 0


OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _output_format(output: Path) -> str:
    """The image format for ``output``, refused before any generating if it cannot be written."""
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise CommandError(f"-o {output}: the file must end in .png, .jpg or .jpeg")
    if not output.parent.is_dir():
        raise CommandError(f"-o {output}: the folder {output.parent} does not exist")
    return fmt


def _check_prompts_allowed(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse what the bot would refuse (prompt and negative prompt), unless ``--no-filter`` says not to check."""
    if args.no_filter:
        print("dreamqueue: --no-filter: the prompt filter was NOT run on these prompts", file=sys.stderr)
        return
    from moderation.filter import PromptFilter

    prompt_filter = PromptFilter.from_settings(settings.moderation)
    for verdict in prompt_filter.check_request(args.prompt, args.negative):
        if not verdict.allowed:
            option = "--negative" if verdict.part == "negative" else "prompt"
            raise CommandError(
                f"the prompt filter blocks this {option} ({verdict.category}: matched {verdict.matched!r}); "
                "see `dreamqueue check-prompt`, or pass --no-filter to generate it anyway"
            )


async def _backup(settings: Settings, dest: Path) -> int:
    from bot.db import Database

    if not settings.database.path.exists():
        raise CommandError(f"no database at {settings.database.path} (database.path); nothing to back up")
    if dest.exists():
        raise CommandError(f"{dest} exists; choose a new file so no earlier backup is overwritten")
    async with await Database.open(settings.database.path, busy_timeout_ms=settings.database.busy_timeout_ms) as db:
        await db.backup(dest)
    print(f"backed up {settings.database.path} to {dest}")
    return 0


async def _forget(settings: Settings, user_id: int) -> int:
    from bot.db import Database
    from bot.forget import Forgetting

    if not settings.database.path.exists():
        raise CommandError(f"no database at {settings.database.path} (database.path); nothing to forget")
    async with await Database.open(settings.database.path, busy_timeout_ms=settings.database.busy_timeout_ms) as db:
        forgotten = await Forgetting(db).everywhere(user_id)
    for each in forgotten:
        print(f"server {each.guild_id}: {each.describe()}")
    print(f"forgot user {user_id} in {len(forgotten)} server(s)")
    left = {each.guild_id: each.left for each in forgotten if each.left}
    if not left:
        return 0
    where = ", ".join(f"{count} in server {guild_id}" for guild_id, count in left.items())
    print(f"dreamqueue: user {user_id} still has queued or running jobs ({where}), which keep their prompts: this "
          "command cannot reach a running bot's queue. Cancel them with /admin forget member: in that server (it "
          "cancels and blanks them), or run this again once they have ended.", file=sys.stderr)
    return 1


def _check_prompts(settings: Settings, prompts: Sequence[str], negative: str) -> int:
    from moderation.filter import PromptFilter, verdict_lines

    lines = sys.stdin if list(prompts) == ["-"] else prompts
    for line in verdict_lines(PromptFilter.from_settings(settings.moderation), lines, negative):
        print(line, flush=True)
    return 0
