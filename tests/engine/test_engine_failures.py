"""The engine's failure paths, end to end: cancelling a running batch, a killed engine, a hung engine,
out-of-memory in the engine process, a model that does not load.

Nothing here depends on how fast the machine is: a job named in
``EngineFaults.hold_jobs`` stops after its first step until the client sends
something, so its batch is still running when the test acts; the watchdog is
driven by :class:`WatchdogClock` in every test, so the engine is "silent too
long" only when the test says so; and each test that kills, hangs or closes
an engine has an engine of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.client import CANCELLED, CRASHED, HUNG, SHUT_DOWN, EngineProcess, EngineStartError
from engine.config import EngineSettings
from engine.protocol import EngineFaults
from engine.types import GenerationParams, JobRequest, Outcome, Progress

QUICK = GenerationParams(width=64, height=64, steps=2, sampler="euler")
LONG = GenerationParams(width=64, height=64, steps=30, sampler="euler")
HELD = frozenset({"running", "killed", "hung"})
"""Jobs that stop after their first step until the test acts."""


class WatchdogClock:
    """The engine watchdog's clock in a test: silence lasts "too long" only once the test calls :meth:`expire`."""

    def __init__(self) -> None:
        self._expired = asyncio.Event()

    def expire(self) -> None:
        self._expired.set()

    async def silence(self, seconds: float) -> None:
        await self._expired.wait()
        self._expired.clear()  # once: the next batch is watched afresh


@pytest.fixture
def clock() -> WatchdogClock:
    return WatchdogClock()


@pytest_asyncio.fixture
async def held_engine(tiny_model: Path, clock: WatchdogClock) -> AsyncIterator[EngineProcess]:
    """An engine of the test's own that holds the jobs in :data:`HELD`, its watchdog on ``clock``."""
    settings = EngineSettings(model=str(tiny_model), device="cpu")
    async with EngineProcess(settings, faults=EngineFaults(hold_jobs=HELD), silence=clock.silence) as engine:
        yield engine


def job(job_id: str, *seeds: int, params: GenerationParams = LONG) -> JobRequest:
    return JobRequest(job_id, "a lighthouse", seeds, params)


async def test_cancelling_a_running_job_stops_its_batch(held_engine: EngineProcess) -> None:
    steps: list[int] = []

    async def cancel_at_first_step(progress: Progress) -> None:
        steps.append(progress.step)
        if progress.step == 1:
            assert await held_engine.cancel("running")

    [result] = await held_engine.generate([job("running", 1)], cancel_at_first_step)
    assert result.outcome == Outcome.CANCELLED and result.error == CANCELLED and not result.images
    assert max(steps) < LONG.steps
    [after] = await held_engine.generate([job("after", 1, params=QUICK)])
    assert after.outcome == Outcome.DONE


async def test_cancelling_one_job_of_a_shared_batch_lets_the_other_finish(held_engine: EngineProcess) -> None:
    async def cancel_a(progress: Progress) -> None:
        if progress.step == 1 and progress.job_id == "a":
            await held_engine.cancel("a")

    a, b = await held_engine.generate([job("a", 1, params=QUICK), job("b", 2, params=QUICK)], cancel_a)
    assert a.outcome == Outcome.CANCELLED and not a.images
    assert b.outcome == Outcome.DONE and len(b.images) == 1


async def test_killed_engine_fails_the_batch_clearly_and_the_next_job_runs_on_a_new_engine(
    held_engine: EngineProcess,
) -> None:
    [before] = await held_engine.generate([job("before", 5, params=QUICK)])
    first_pid, restarts = held_engine.pid, held_engine.health().restarts

    def kill_at_first_step(progress: Progress) -> None:
        if progress.step == 1:
            os.kill(first_pid, signal.SIGKILL)

    [killed] = await held_engine.generate([job("killed", 1)], kill_at_first_step)
    assert killed.outcome == Outcome.FAILED and killed.retryable
    assert killed.error == CRASHED
    [after] = await held_engine.generate([job("after", 5, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert held_engine.pid not in (None, first_pid)
    assert held_engine.health().restarts == restarts + 1
    assert held_engine.health().extra["restarts_crashed"] == restarts + 1
    assert after.images[0].png == before.images[0].png  # the new engine makes the same image


async def test_hung_engine_is_caught_by_the_watchdog(held_engine: EngineProcess, clock: WatchdogClock) -> None:
    hung_pid = held_engine.pid
    assert hung_pid is not None

    def freeze_at_first_step(progress: Progress) -> None:
        if progress.step == 1:
            os.kill(hung_pid, signal.SIGSTOP)  # alive but silent, as a wedged GPU driver would leave it
            clock.expire()  # ... for longer than the watchdog allows

    [hung] = await held_engine.generate([job("hung", 1)], freeze_at_first_step)
    assert hung.outcome == Outcome.FAILED and hung.retryable
    assert hung.error == HUNG
    [after] = await held_engine.generate([job("after", 2, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert held_engine.pid != hung_pid
    assert held_engine.health().extra["restarts_hung"] == 1
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)  # the frozen engine was killed, not left behind


async def test_an_engine_that_dies_while_idle_is_replaced_before_the_next_job(held_engine: EngineProcess) -> None:
    idle_pid, restarts = held_engine.pid, held_engine.health().restarts
    assert idle_pid is not None
    os.kill(idle_pid, signal.SIGKILL)
    while held_engine.pid == idle_pid:  # until the client notices (a job sent in the instant before fails as crashed)
        await asyncio.sleep(0.01)
    [after] = await held_engine.generate([job("after", 3, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert held_engine.pid != idle_pid and held_engine.health().restarts == restarts + 1


async def test_out_of_memory_in_the_engine_process_shrinks_the_batch(tiny_model: Path, clock: WatchdogClock) -> None:
    settings = EngineSettings(model=str(tiny_model), device="cpu")
    # The watchdog on the test's clock: a starved machine's slow first batch is not "silent too long".
    async with EngineProcess(settings, faults=EngineFaults(oom_above_images=1), silence=clock.silence) as engine:
        [result] = await engine.generate([job("big", 1, 2, 3, 4, params=QUICK)])
        [alone] = await engine.generate([job("alone", 3, params=QUICK)])
        assert result.outcome == Outcome.DONE and len(result.images) == 4
        assert engine.health().extra["oom_retries"] == 2  # 4 -> 2 -> 1 images per UNet batch
        assert result.images[2].png == alone.images[0].png


async def test_a_model_that_does_not_load_fails_the_start_clearly(tmp_path: Path) -> None:
    engine = EngineProcess(EngineSettings(model=str(tmp_path / "missing"), device="cpu"))
    with pytest.raises(EngineStartError, match=r"^engine\.model: no model folder at .*missing; run `dreamqueue make-tiny"):
        await engine.start()
    await engine.close()


async def test_closing_fails_the_running_batch_and_later_jobs_clearly(tiny_model: Path, clock: WatchdogClock) -> None:
    engine = EngineProcess(EngineSettings(model=str(tiny_model), device="cpu"), faults=EngineFaults(hold_jobs=HELD),
                           silence=clock.silence)
    await engine.start()
    closing: list[asyncio.Task[None]] = []

    def close_at_first_step(progress: Progress) -> None:
        if progress.step == 1 and not closing:
            closing.append(asyncio.create_task(engine.close()))

    [running] = await engine.generate([job("running", 1)], close_at_first_step)
    await closing[0]
    assert running.outcome == Outcome.FAILED and running.retryable and running.error == SHUT_DOWN
    [later] = await engine.generate([job("later", 1, params=QUICK)])
    assert later.outcome == Outcome.FAILED and later.retryable and later.error == SHUT_DOWN
    assert not engine.health().ready and engine.pid is None
