"""What members see: embeds for queued, running and finished jobs, and grids that fit the upload limit.

Plain functions from the services' value types to discord.py objects; no I/O.
The image work (:func:`grid_upload`, :func:`single_upload`) is CPU-bound
Pillow code: callers run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import discord
from PIL import Image

from bot.scheduler.models import JobView, Placement, QuotaStatus, SchedulerStats
from bot.scheduler.modes import RELAX, RelaxTerms
from bot.text import clip
from engine.grid import make_grid
from engine.pnginfo import SAMPLER_LABELS, format_parameters
from engine.types import GeneratedImage

BLURPLE = discord.Colour.blurple()
GREEN = discord.Colour.green()
RED = discord.Colour.red()
GREY = discord.Colour.light_grey()

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
"""Discord's upload limit where no guild says otherwise (DMs, unboosted guilds)."""
_BAR_CELLS = 12
_LOSSY_STEPS: tuple[tuple[str, int, float], ...] = (
    ("WEBP", 90, 1.0),
    ("JPEG", 90, 1.0),
    ("WEBP", 75, 1.0),
    ("JPEG", 75, 1.0),
    ("WEBP", 75, 0.75),
    ("WEBP", 70, 0.5),
    ("WEBP", 60, 0.35),
    ("WEBP", 50, 0.25),
)
"""Re-encodings tried in order until a grid fits: format, quality, scale."""


@dataclass(frozen=True)
class Upload:
    """Bytes to attach, and the file name Discord shows (its extension names the format)."""

    data: bytes
    filename: str
    note: str = ""
    """Said to the member when the file is not the original PNG."""

    def file(self, *, spoiler: bool = False) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename, spoiler=spoiler)


def relative(moment: float) -> str:
    """A Discord timestamp that every client shows as "in 5 minutes" and keeps up to date."""
    return f"<t:{math.ceil(moment)}:R>"


def job_footer(number: int) -> str:
    """The footer of every embed about a job, with the number members see in its server (after a restart, the
    delivery finds results by it)."""
    return f"Job #{number}"


def job_line(job: JobView) -> str:
    """One line of a member's history: number, state, when, prompt (clipped)."""
    state = f"{job.state}, undeliverable" if job.undeliverable else str(job.state)
    return f"• #{job.number} {state}, {relative(job.created_at)}: {clip(job.prompt, 50)}"


def _job_embed(job: JobView, colour: discord.Colour) -> discord.Embed:
    embed = discord.Embed(description=clip(job.prompt, 4000), colour=colour)
    if job.negative_prompt:
        embed.add_field(name="Negative", value=clip(job.negative_prompt, 1024), inline=False)
    embed.set_footer(text=job_footer(job.number))
    return embed


def queued_embed(job: JobView, placement: Placement, now: float, note: str = "") -> discord.Embed:
    """The reply while a job waits: its position, the queue length and when it should be ready."""
    embed = _job_embed(job, GREY)
    if placement.position:
        line = f"⏳ Queued: #{placement.position} of {placement.queue_length}"
    else:
        line = "⏳ Starting"
    if placement.eta_seconds is not None:
        line += f", ready {relative(now + placement.eta_seconds)}"
    embed.title = line
    if note:
        embed.add_field(name="Note", value=note, inline=False)
    return embed


def progress_embed(job: JobView, step: int, steps: int, note: str = "") -> discord.Embed:
    """The reply while a job runs: a progress bar of its denoising steps."""
    filled = round(_BAR_CELLS * step / steps) if steps else 0
    embed = _job_embed(job, BLURPLE)
    embed.title = f"🎨 Dreaming  {'▰' * filled}{'▱' * (_BAR_CELLS - filled)}  {step}/{steps}"
    if note:
        embed.add_field(name="Note", value=note, inline=False)
    return embed


def ended_embed(job: JobView, title: str, reason: str | None) -> discord.Embed:
    """The reply for a job that will not deliver images (failed, cancelled, interrupted)."""
    embed = _job_embed(job, RED)
    embed.title = title
    if reason:
        embed.add_field(name="Why", value=clip(reason, 1024), inline=False)
    return embed


def result_embed(job: JobView, upload: Upload, seconds: float | None, author: str, note: str = "") -> discord.Embed:
    """The finished grid: every parameter needed to make it again."""
    params = job.params
    embed = discord.Embed(description=clip(job.prompt, 4000), colour=GREEN)
    embed.add_field(name="By", value=author, inline=False)
    if job.negative_prompt:
        embed.add_field(name="Negative", value=clip(job.negative_prompt, 1024), inline=False)
    embed.add_field(name="Seeds", value=", ".join(str(seed) for seed in job.seeds), inline=False)
    embed.add_field(name="Steps", value=str(params.steps))
    embed.add_field(name="Guidance", value=f"{params.guidance:g}")
    embed.add_field(name="Sampler", value=SAMPLER_LABELS.get(params.sampler, params.sampler))
    embed.add_field(name="Size", value=f"{params.width}×{params.height}")
    if job.style:
        embed.add_field(name="Style", value=job.style)
    if job.mode == RELAX:
        embed.add_field(name="Mode", value="relax (free)")
    if seconds is not None:
        embed.add_field(name="Time", value=f"{seconds:.1f} s")
    notes = "\n".join(text for text in (note, upload.note) if text)
    if notes:
        embed.add_field(name="Note", value=notes, inline=False)
    embed.set_image(url=f"attachment://{upload.filename}")
    embed.set_footer(text=job_footer(job.number))
    return embed


def quota_embed(status: QuotaStatus, now: float) -> discord.Embed:
    """A member's quota: tier, burst and daily budget left, and when each comes back."""
    limits = status.limits
    embed = discord.Embed(title=f"Your quota: {status.tier} tier", colour=BLURPLE)
    burst = f"**{status.burst_left}** of {limits.burst} images"
    if status.next_image_at is not None:
        burst += f"\nnext image back {relative(status.next_image_at)}"
    if status.burst_full_at is not None:
        burst += f", full {relative(status.burst_full_at)}"
    embed.add_field(name="Burst", value=burst)
    embed.add_field(
        name="Today",
        value=f"**{status.daily_left}** of {limits.daily_images} images\nresets {relative(status.daily_resets_at)}",
    )
    embed.add_field(
        name="Per request",
        value=f"up to {limits.max_images} images, {limits.max_steps} steps, {_pixels(limits.max_pixels)}",
        inline=False,
    )
    embed.add_field(name="In the queue", value=f"{status.queued_jobs} of {limits.max_queued} jobs")
    embed.add_field(name="Modes", value=modes_text(status.relax, status.relax_jobs), inline=False)
    if status.banned:
        until = "until lifted" if status.banned_until is None else f"until {relative(status.banned_until)}"
        embed.add_field(name="Banned", value=f"You may not generate images {until}.", inline=False)
        embed.colour = RED
    return embed


def modes_text(relax: RelaxTerms, relax_jobs: int) -> str:
    """What ``/dream mode:`` costs: fast from the quota, relax nothing, on the server's terms."""
    fast = "**fast** (the default): each image is charged to your quota, refunded if the job does not finish."
    if not relax.max_jobs:
        return f"{fast}\n**relax** is off in this server."
    return (f"{fast}\n**relax**: free, never charged; it queues at {relax.weight:g}× your share of the GPU, so it "
            f"waits while others are busy, and you may have {relax.max_jobs} relax job{'s' * (relax.max_jobs > 1)} "
            "queued at once "
            f"({relax_jobs} now).")  # fmt: skip


def engine_fields(stats: SchedulerStats) -> list[tuple[str, str]]:
    """The engines' share of the time work waited (since start, not counting pauses), as two named figures:
    the wall time the scheduler spent waiting on the engines' batches, and the time the engines kept their
    devices generating by their own timing (the metric ``dreamqueue_engine_busy_seconds_total``); both per
    engine, after how many engines there are and each one's figures when there are several."""
    extra = stats.engine.get("extra", {})
    extra = extra if isinstance(extra, dict) else {}
    device = float(extra.get("busy_seconds", 0.0))
    engines = float(extra.get("engines", 1.0)) or 1.0

    def share(seconds: float) -> str:
        return f"{seconds / (stats.backlog_seconds * engines):.0%}" if stats.backlog_seconds else "n/a"

    several = [("Engines", f"{extra.get('engines_ready', 0.0):.0f} of {engines:.0f} ready")] if engines > 1 else []
    each = stats.engine.get("engines", ())
    if engines > 1 and isinstance(each, list | tuple):
        several.append(("Each engine", fitted([engine_line(number, health) for number, health in
                                               enumerate(each, start=1) if isinstance(health, dict)])))
    return several + [
        ("Engine batch time", f"{share(stats.busy_seconds)} of the time work waited (wall clock)"),
        ("Device busy", f"{share(device)} of the time work waited (the engine's own timing)"),
    ]


def engine_line(number: int, health: dict[str, object]) -> str:
    """One engine in a line: state, model, most images a batch, measured speed, warm sizes, free memory."""
    extra = health.get("extra")
    state = "down" if not health.get("ready") else "busy" if health.get("busy") else "idle"
    parts = [f"{number}. {state}", str(health.get("model") or "?")]
    if isinstance(extra, dict) and "max_batch_images" in extra:
        parts.append(f"≤{float(extra['max_batch_images']):.0f} img")
    speed, free, sizes = health.get("images_per_second"), health.get("free_memory_mb"), health.get("sizes")
    parts.append(f"{speed:.2f} img/s" if isinstance(speed, float) else "speed n/a")
    if sizes and isinstance(sizes, list | tuple):
        parts.append(" ".join(f"{width}×{height}" for width, height in sizes))
    if isinstance(free, float):
        parts.append(f"{free / 1024:.1f} GiB free")
    return " · ".join(parts)


def fitted(lines: Sequence[str], limit: int = 1024) -> str:
    """``lines`` joined, as many as fit in ``limit`` characters (an embed field's), then how many were left."""
    shown: list[str] = []
    for index, line in enumerate(lines):
        more = f"… and {len(lines) - index} more"
        if len("\n".join([*shown, line])) + (len(more) + 1 if index + 1 < len(lines) else 0) > limit:
            return "\n".join([*shown, more])
        shown.append(line)
    return "\n".join(shown) or "none"


def _pixels(pixels: int) -> str:
    side = math.isqrt(pixels)
    return f"{side}×{side} pixels" if side * side == pixels else f"{pixels:,} pixels"


def parameters_text(job: JobView, seeds: Sequence[int], model: str) -> str:
    """The PNG parameters text of a job's images (A1111 layout)."""
    return format_parameters(job.prompt, job.negative_prompt, job.params, seeds, model)


def grid_upload(job: JobView, images: Sequence[GeneratedImage], model: str, limit: int) -> Upload:
    """The job's images as one grid PNG, re-encoded smaller when it is over ``limit`` bytes. CPU-bound."""
    grid = make_grid(images, parameters_text(job, [image.seed for image in images], model))
    return fit(grid.png, limit, f"dream-{job.number}")


def single_upload(job: JobView, image: GeneratedImage, index: int, limit: int) -> Upload:
    """Image ``index`` of the job at full size (the engine embedded its own parameters). CPU-bound."""
    return fit(image.png, limit, f"dream-{job.number}-{index + 1}")


def fit(png: bytes, limit: int, stem: str) -> Upload:
    """``png`` as is when it fits in ``limit`` bytes, else the first re-encoding that does."""
    if len(png) <= limit:
        return Upload(png, f"{stem}.png")
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    for fmt, quality, scale in _LOSSY_STEPS:
        frame = image if scale == 1.0 else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
        )
        out = io.BytesIO()
        frame.save(out, format=fmt, quality=quality)
        if out.tell() <= limit:
            size = "" if scale == 1.0 else f", scaled to {frame.width}×{frame.height}"
            note = f"The PNG was over this server's upload limit; sent as {fmt} (quality {quality}{size})."
            return Upload(out.getvalue(), f"{stem}.{fmt.lower()}", note)
    raise ValueError(f"cannot fit a {image.width}x{image.height} image into {limit} bytes")
