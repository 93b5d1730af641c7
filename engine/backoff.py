"""Running a batch's images in UNet batches that shrink when the GPU runs out of memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the GPU out of memory: ``torch.cuda.OutOfMemoryError``, or a RuntimeError saying so."""
    return isinstance(exc, RuntimeError) and (
        type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()
    )


def run_in_chunks(
    run: Callable[[Sequence[T]], Sequence[R] | None],
    items: Sequence[T],
    size: int,
    on_shrink: Callable[[int], None] = lambda size: None,
) -> list[R] | None:
    """Run ``items`` through ``run`` at most ``size`` at a time, halving the size on out-of-memory.

    A chunk that runs out of memory is retried in halves (``on_shrink`` is told
    the new size, e.g. to empty the CUDA cache), down to one item; the smaller
    size is kept for the rest. A single item out of memory re-raises. Returns
    the results in order, or None as soon as ``run`` returns None (stopped).
    """
    results: list[R] = []
    start = 0
    while start < len(items):
        chunk = items[start : start + size]
        out_of_memory = False
        try:
            out = run(chunk)
        except RuntimeError as exc:
            if len(chunk) == 1 or not is_out_of_memory(exc):
                raise
            out_of_memory = True
        if out_of_memory:  # shrink outside the handler, once the traceback and its tensors are released
            size = len(chunk) // 2
            on_shrink(size)
            continue
        if out is None:
            return None
        results.extend(out)
        start += len(chunk)
    return results
