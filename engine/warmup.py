"""Compiling in the background: a compiling engine serves at once, uncompiled, and compiles while idle.

A cold start that compiled every shape before serving would keep members
waiting for minutes. Instead the engine reports ready once the model is loaded
and has run once, serves every batch eagerly, and compiles the shapes it will
serve compiled (:meth:`engine.pipeline.Pipeline.warm_up` lists them) one at a
time whenever no batch is waiting: each shape runs compiled from the moment its
compile is done. Compiling on the serving thread, between batches, means a
compile never runs alongside a member's batch (Dynamo and the compile stance
are process-wide), at the cost of a batch that arrives mid-compile waiting for
that one shape.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.pipeline import Pipeline

log = logging.getLogger(__name__)

Shape = tuple[tuple[int, int], int]
"""``((width, height), images per UNet batch)``."""


class BackgroundCompile:
    """The shapes a compiling engine has still to compile, compiled one per call of :meth:`compile_next`."""

    def __init__(self, pipeline: Pipeline, shapes: Sequence[Shape], sampler: str) -> None:
        self.pipeline = pipeline
        self.sampler = sampler
        self.pending: deque[Shape] = deque(shapes)
        self.total = len(shapes)
        self.failed = 0

    @property
    def done(self) -> bool:
        """Whether every shape is compiled (or failed to, and runs uncompiled)."""
        return not self.pending

    def compile_next(self) -> None:
        """Compile the next shape; one that fails is logged and keeps running uncompiled."""
        size, batch = self.pending.popleft()
        try:
            self.pipeline.warm_shape(size, batch, self.sampler)
        except Exception:
            self.failed += 1
            log.exception("could not compile %dx%d, %d images per batch: it runs uncompiled", *size, batch)

    @property
    def detail(self) -> str:
        """How far the compile is, for the engine's health."""
        compiled = self.total - len(self.pending) - self.failed
        if not self.total:
            return "ready"
        if self.pending:
            return f"ready, compiling in the background: {compiled} of {self.total} shapes compiled"
        failed = f", {self.failed} failed (uncompiled)" if self.failed else ""
        return f"ready, {compiled} of {self.total} shapes compiled{failed}"
