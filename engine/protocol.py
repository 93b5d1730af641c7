"""The messages the engine client and the engine process exchange over their pipe.

Plain picklable dataclasses, no torch. The client sends one :class:`RunBatch`
at a time and reads :class:`Step` messages until the batch's answer
(:class:`BatchDone`, :class:`BatchStopped` or :class:`BatchFailed`). A compiling
engine reports ready before it compiles, then sends :class:`Compiled` each time a
shape is compiled, between batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import GeneratedImage, JobRequest

# Client -> engine process


@dataclass(frozen=True)
class RunBatch:
    """Render ``jobs`` (all with the same params) as one batch."""

    batch_id: int
    jobs: tuple[JobRequest, ...]


@dataclass(frozen=True)
class Interrupt:
    """Stop batch ``batch_id`` at its next step (every job in it was cancelled)."""

    batch_id: int


@dataclass(frozen=True)
class Shutdown:
    """Stop serving and exit (a running batch is abandoned)."""


# Engine process -> client


@dataclass(frozen=True)
class Ready:
    """The model is loaded and warm."""

    device: str
    model: str
    seconds: float
    batch_size: int = 1
    """Images per UNet batch, as set or measured at start."""
    safety_checker: str = ""
    """The classifier that checks every image; empty: images are not checked."""
    sizes: tuple[tuple[int, int], ...] = ()
    """``(width, height)`` warmed up (compiled, when compiling)."""
    free_memory_bytes: int | None = None
    """Free device memory once warm (CUDA); None elsewhere."""
    detail: str = "ready"
    """What the engine is doing besides serving, for operators (e.g. compiling in the background)."""


@dataclass(frozen=True)
class Compiled:
    """A compiling engine compiled one more shape in the background; sent between batches, never during one."""

    sizes: tuple[tuple[int, int], ...]
    """``(width, height)`` compiled so far."""
    detail: str
    """How far the background compile is, for operators."""


@dataclass(frozen=True)
class StartFailed:
    """The model could not be loaded; ``reason`` is for the operator."""

    reason: str


@dataclass(frozen=True)
class Step:
    """Batch ``batch_id`` has done ``step`` of ``steps`` denoising steps."""

    batch_id: int
    step: int
    steps: int
    previews: tuple[bytes | None, ...] = ()
    """A JPEG preview of each job of ``RunBatch.jobs`` (its first image), in order, or None for a job with
    none at this step; empty: no previews at this step (see ``engine.preview_every_steps``)."""


@dataclass(frozen=True)
class BatchDone:
    """The images of each job of the batch (PNGs with their safety verdicts), in the order of ``RunBatch.jobs``."""

    batch_id: int
    images: tuple[tuple[GeneratedImage, ...], ...]
    oom_retries: int
    peak_memory_bytes: int
    """Peak GPU memory of this batch (CUDA), or the engine process's peak resident memory (CPU)."""
    busy_seconds: float = 0.0
    """Time the batch kept the device busy generating (see ``Pipeline.busy_seconds``)."""
    safety_seconds: float = 0.0
    """Time the batch spent in the image safety check (see ``SafetyCheck.busy_seconds``)."""
    free_memory_bytes: int | None = None
    """Free device memory after the batch (CUDA); None elsewhere."""
    refused: tuple[str | None, ...] = ()
    """For each job, in order: why it failed on its own, before any step (its start image was refused), or
    None for a job that ran; empty: every job ran. Safe to show a member; not retryable."""
    png_wait_seconds: float = 0.0
    """Time the answer waited, after the last UNet batch, for its PNGs to be encoded: idle device time."""


@dataclass(frozen=True)
class BatchStopped:
    """The batch was interrupted on request; no images."""

    batch_id: int


@dataclass(frozen=True)
class BatchFailed:
    """The batch failed inside the engine; ``reason`` is safe to show a member."""

    batch_id: int
    reason: str


@dataclass(frozen=True)
class EngineFaults:
    """Faults injected inside the engine process, for tests of the failure paths.

    Pass to ``EngineProcess(settings, faults=...)``; production code never sets them.
    """

    oom_above_images: int | None = None
    """Raise ``torch.cuda.OutOfMemoryError`` for every UNet batch of more images than this (0: every batch)."""
    hold_jobs: frozenset[str] = frozenset()
    """A batch with one of these job ids stops after its first step until the client sends something (an
    interrupt or a shutdown): it is still running when a test acts on its first progress report, however
    slow the machine."""
