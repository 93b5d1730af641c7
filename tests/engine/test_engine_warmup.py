"""A compiling engine serves at once, uncompiled, and compiles in the background between batches.

The compiler is a fake slow one: a ``torch.compile`` backend that waits for the
test's word before handing back the captured graph (run as captured, like the
``eager`` backend), and counts compiles and calls of compiled code.
"""

from __future__ import annotations

import io
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from engine.child import EngineChild
from engine.client import EngineProcess
from engine.config import EngineSettings
from engine.pipeline import Pipeline
from engine.protocol import BatchDone, Compiled, EngineFaults, RunBatch, Shutdown
from engine.types import GenerationParams, JobRequest
from engine.warmup import BackgroundCompile, warm_up
from engine.worker import Server

PARAMS = GenerationParams(width=64, height=64, steps=3, guidance=7.0, sampler="dpmpp_2m")
JOB = JobRequest("a", "a lighthouse", (1, 2, 3), PARAMS)
BOUND_S = 120.0
"""Only a failing test waits this long."""


@dataclass
class SlowCompiler:
    """A ``torch.compile`` backend that blocks until :attr:`release` is set; counts compiles and compiled calls."""

    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    compiles: int = 0
    calls: int = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        self.started.set()
        assert self.release.wait(BOUND_S), "the test never let the compile finish"
        self.compiles += 1

        def compiled(*args: Any) -> Any:
            self.calls += 1
            return graph.forward(*args)

        return compiled


def settings(tiny_model: Path, **options: Any) -> EngineSettings:
    options = {"batch_size": 2, **options}
    return EngineSettings(model=str(tiny_model), device="cpu", compile=True, warm_up_sizes=[[64, 64]],
                          default_sampler="dpmpp_2m", **options)  # fmt: skip


@pytest.fixture
def compiler() -> Iterator[SlowCompiler]:
    torch._dynamo.reset()  # compiled code of other tests' pipelines is not this compiler's
    slow = SlowCompiler()
    yield slow
    slow.release.set()
    torch._dynamo.reset()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_warm_up_leaves_the_compile_for_later(tiny_model: Path, compiler: SlowCompiler) -> None:
    options = settings(tiny_model)
    pipeline = Pipeline.load(options, compile_backend=compiler)
    shapes = warm_up(pipeline, options, compile_later=True)
    assert shapes == [((64, 64), 1), ((64, 64), 2)]
    assert compiler.compiles == 0 and not compiler.started.is_set()
    assert pipeline.warm_sizes == ()  # nothing compiled yet
    background = BackgroundCompile(pipeline, shapes, options.default_sampler)
    assert background.detail == "ready, compiling in the background: 0 of 2 shapes compiled"


def test_auto_batch_size_is_measured_uncompiled_when_compiling_later(tiny_model: Path, compiler: SlowCompiler) -> None:
    options = settings(tiny_model, batch_size="auto", max_batch_images=2)
    pipeline = Pipeline.load(options, compile_backend=compiler)
    shapes = warm_up(pipeline, options, compile_later=True)
    assert not compiler.started.is_set()  # measured without a compile: the start does not wait for one
    assert pipeline.batch_size in (1, 2) and shapes == [((64, 64), batch) for batch in range(1, pipeline.batch_size + 1)]


def test_the_engine_serves_before_compiling_then_runs_compiled_with_the_same_images(
    tiny_model: Path, compiler: SlowCompiler
) -> None:
    options = settings(tiny_model)
    pipeline = Pipeline.load(options, compile_backend=compiler)
    background = BackgroundCompile(pipeline, warm_up(pipeline, options, compile_later=True), options.default_sampler)
    ours, theirs = multiprocessing.Pipe()
    ours.send(RunBatch(1, (JOB,)))  # a member's batch waits as the engine starts serving (UNet batches of 2 and 1)
    with ThreadPoolExecutor(2) as encoder:
        server = Server(theirs, pipeline, options, EngineFaults(), encoder, background=background)
        serving = threading.Thread(target=server.serve)
        serving.start()
        try:
            eager = receive(ours, BatchDone)
            assert compiler.compiles == 0 and compiler.calls == 0  # rendered with nothing compiled
            assert compiler.started.wait(BOUND_S)  # then, idle, it compiles
            compiler.release.set()
            reports = [receive(ours, Compiled) for _ in range(2)]
            assert [report.detail for report in reports] == [
                "ready, compiling in the background: 1 of 2 shapes compiled",
                "ready, 2 of 2 shapes compiled",
            ]
            assert reports[-1].sizes == ((64, 64),)
            compiles, calls = compiler.compiles, compiler.calls
            ours.send(RunBatch(2, (JOB,)))
            compiled = receive(ours, BatchDone)
        finally:
            ours.send(Shutdown())
            serving.join(BOUND_S)
    assert compiler.calls > calls and compiler.compiles == compiles  # ran compiled, compiled nothing more
    for before, after in zip(eager.images[0], compiled.images[0], strict=True):
        difference = np.abs(pixels(before.png) - pixels(after.png))
        assert difference.max() <= 3 and difference.mean() < 0.5


def test_a_shape_whose_compile_fails_keeps_running_uncompiled(tiny_model: Path, compiler: SlowCompiler) -> None:
    options = settings(tiny_model, batch_size=1)
    pipeline = Pipeline.load(options, compile_backend=compiler)
    background = BackgroundCompile(pipeline, warm_up(pipeline, options, compile_later=True), options.default_sampler)

    def broken(*args: Any) -> Any:
        raise RuntimeError("the compiler broke")

    pipeline.generate = broken  # type: ignore[method-assign]
    background.compile_next()
    assert background.done and background.detail == "ready, 0 of 1 shapes compiled, 1 failed (uncompiled)"
    assert pipeline.warm_sizes == () and pipeline._fit(PARAMS, []) == ([], True)  # uncompiled, unpadded


async def test_the_client_reports_what_the_engine_has_compiled(tiny_model: Path) -> None:
    client = EngineProcess(settings(tiny_model))
    child = EngineChild(client.settings, client.faults, lambda child: None)
    client._child, client._detail = child, "ready, compiling in the background: 0 of 3 shapes compiled"
    assert (client.health().detail, client.health().sizes) == (client._detail, ())
    child._deliver(Compiled(((64, 64),), "ready, 3 of 3 shapes compiled"))
    assert child.inbox.empty()  # between batches: kept on the child, not queued for a batch to read
    assert (client.health().detail, client.health().sizes) == ("ready, 3 of 3 shapes compiled", ((64, 64),))


def receive(conn: Any, kind: type[Any]) -> Any:
    """The next message of ``kind`` from the engine (steps are skipped)."""
    while True:
        assert conn.poll(BOUND_S), f"no {kind.__name__} came"
        message = conn.recv()
        if isinstance(message, kind):
            return message
