"""The engine benchmark's printed report: the table against stock diffusers, start-up, duty cycle, the ablation."""

from __future__ import annotations

import argparse

from bench.engine_measure import Cell
from bench.engine_process import EngineRun


def report(
    args: argparse.Namespace, stock: dict[int, Cell], stock_first_s: float, run: EngineRun, direct: dict[int, float]
) -> None:
    """Print the table of stock diffusers against the engine and the figures under it."""
    cuda = args.device == "cuda"
    what = "GPU" if cuda else "CPU, tiny model" if args.arch == "tiny" else "CPU"
    memory = "peak GPU MiB (max_memory_allocated)" if cuda else "peak RSS MiB of the process so far"
    options = ", ".join(f"{key}={value}" for key, value in args.options.items()) or "defaults"
    print(
        f"\n== {args.arch} on {args.device} ({what} figures): {args.size}x{args.size}, {args.steps} steps, "
        f"{args.sampler}, CFG {args.guidance:g}, median of {args.repeats} runs per cell"
    )
    print(f"stock: diffusers {'fp16' if cuda else 'fp32'}, SDPA, defaults; engine options: {options}")
    print(f"engine batch size (images per UNet batch): {run.batch_size}; memory: {memory}")
    columns = ("batch", "stock img/s", "engine img/s", "x stock", "x stock b1", "stock steps/s", "engine steps/s")
    columns += ("stock mem", "engine mem", "in-process img/s", "boundary")
    widths = [max(len(name), 6) for name in columns]
    header = " | ".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True))
    print(header + "\n" + "-" * len(header))
    base = 1 / stock[args.batches[0]].seconds if args.batches[0] == 1 else None
    for batch in args.batches:
        ours, theirs = run.cells[batch], stock[batch]
        engine_rate, stock_rate = batch / ours.seconds, batch / theirs.seconds
        cells = (
            batch,
            f"{stock_rate:.2f}",
            f"{engine_rate:.2f}",
            f"{engine_rate / stock_rate:.2f}",
            f"{engine_rate / base:.2f}" if base else "-",
            f"{args.steps / theirs.seconds:.1f}",
            f"{args.steps / ours.seconds:.1f}",
            f"{theirs.peak_mb:.0f}",
            f"{ours.peak_mb:.0f}",
            f"{batch / direct[batch]:.2f}",
            f"{ours.seconds / direct[batch] - 1:+.1%}",
        )
        print(" | ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True)))
    print("steps/s: denoising steps of the whole batch per second, end to end (decode and, for the engine, PNGs)")
    if args.safety_checker != "none":
        cells = {batch: run.cells[batch] for batch in args.batches}
        costs = ", ".join(
            f"batch {batch}: {cell.checking_s * 1000:.1f} ms vs {cell.generating_s * 1000:.1f} ms "
            f"({cell.checking_s / cell.generating_s:.1%})"
            for batch, cell in cells.items()
        )
        print(f"safety check per image (random {args.arch}-sized checker, batched, preprocessing included) vs "
              f"generation per image: {costs}")  # fmt: skip
    print("boundary: engine time / the same pipeline called in this process - 1 (what the process boundary costs, "
          "and the safety check, which the in-process pipeline does not run)")  # fmt: skip
    print(
        f"time to first image: stock (load + 1 image) {stock_first_s:.1f} s; engine from start, cold "
        f"{run.first_image_cold_s:.1f} s, with the compile cache {run.first_image_cached_s:.1f} s"
    )
    nvml = f"{run.nvml_utilization:.0%}" if run.nvml_utilization is not None else "n/a"
    print(
        f"duty cycle over {args.stream} back-to-back batches of {run.batch_size}: {run.duty:.0%} "
        f"({'GPU time from CUDA events' if cuda else 'time in generate'} / wall); NVML utilization: {nvml}"
    )
    print(
        f"low-memory mode, 1 image: peak {run.low_memory_peak_mb:.0f} MiB, {run.low_memory_seconds:.2f} s "
        f"({memory})"
    )


def report_ablation(rows: list[tuple[str, float, float]], batch: int) -> None:
    """Print each option's images/s alone against the plain pipeline's (rows of :func:`ablate`)."""
    print(f"\neach option alone vs the plain engine pipeline, in-process, batch {batch}:")
    for name, plain, on in rows:
        print(f"  {name:>22}: off {plain:7.2f} img/s, on {on:7.2f} img/s ({on / plain:.2f}x)")
