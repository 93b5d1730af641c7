"""How the engine benchmark measures: median time, peak memory, GPU utilization, and the table cell they fill."""

from __future__ import annotations

import gc
import math
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Cell:
    """One batch size's figures for stock diffusers or the engine."""

    seconds: float
    """Median seconds per batch."""
    peak_mb: float
    generating_s: float = math.nan
    """Device seconds generating per image (the engine's own timing, without the check and PNGs)."""
    checking_s: float = math.nan
    """Seconds in the image safety check per image (preprocessing included)."""


def mb(size: float) -> float:
    """Bytes in MiB."""
    return size / 2**20


def rss_peak_bytes() -> int:
    """Peak resident memory of this process so far, in bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def timed(run: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` runs of ``run``."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def release_memory() -> None:
    """Free what a finished pipeline left behind: unreachable objects and CUDA's cached blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class UtilizationSampler:
    """Samples ``torch.cuda.utilization()`` (NVML: share of time a kernel ran) every 50 ms on a thread."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> UtilizationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # no pynvml / NVML on this box: the duty cycle from CUDA events stands alone
                return

    def mean(self) -> float | None:
        return statistics.mean(self.samples) / 100 if self.samples else None
