"""The engine's failure paths, end to end: cancelling a running batch, a killed engine, a hung engine,
out-of-memory in the engine process, a model that does not load.

The engine here is slowed down (``EngineFaults.step_delay_s``) so a batch is
still running when the test acts on its first progress report.
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

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUICK = GenerationParams(width=64, height=64, steps=2, sampler="euler")
LONG = GenerationParams(width=64, height=64, steps=30, sampler="euler")  # 30 x 0.2 s: long enough to act on


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slow_engine(tiny_model: Path) -> AsyncIterator[EngineProcess]:
    settings = EngineSettings(model=str(tiny_model), device="cpu", watchdog_timeout_s=3.0)
    async with EngineProcess(settings, faults=EngineFaults(step_delay_s=0.2)) as engine:
        yield engine


def job(job_id: str, *seeds: int, params: GenerationParams = LONG) -> JobRequest:
    return JobRequest(job_id, "a lighthouse", seeds, params)


async def test_cancelling_a_running_job_stops_its_batch(slow_engine: EngineProcess) -> None:
    steps: list[int] = []

    async def cancel_at_first_step(progress: Progress) -> None:
        steps.append(progress.step)
        if progress.step == 1:
            assert await slow_engine.cancel("running")

    [result] = await slow_engine.generate([job("running", 1)], cancel_at_first_step)
    assert result.outcome == Outcome.CANCELLED and result.error == CANCELLED and not result.images
    assert max(steps) < LONG.steps
    [after] = await slow_engine.generate([job("after", 1, params=QUICK)])
    assert after.outcome == Outcome.DONE


async def test_cancelling_one_job_of_a_shared_batch_lets_the_other_finish(slow_engine: EngineProcess) -> None:
    async def cancel_a(progress: Progress) -> None:
        if progress.step == 1 and progress.job_id == "a":
            await slow_engine.cancel("a")

    a, b = await slow_engine.generate([job("a", 1, params=QUICK), job("b", 2, params=QUICK)], cancel_a)
    assert a.outcome == Outcome.CANCELLED and not a.images
    assert b.outcome == Outcome.DONE and len(b.images) == 1


async def test_killed_engine_fails_the_batch_clearly_and_the_next_job_runs_on_a_new_engine(
    slow_engine: EngineProcess,
) -> None:
    [before] = await slow_engine.generate([job("before", 5, params=QUICK)])
    first_pid, restarts = slow_engine.pid, slow_engine.health().restarts

    def kill_at_first_step(progress: Progress) -> None:
        if progress.step == 1:
            os.kill(first_pid, signal.SIGKILL)

    [killed] = await slow_engine.generate([job("killed", 1)], kill_at_first_step)
    assert killed.outcome == Outcome.FAILED and killed.retryable
    assert killed.error == CRASHED
    [after] = await slow_engine.generate([job("after", 5, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert slow_engine.pid not in (None, first_pid)
    assert slow_engine.health().restarts == restarts + 1
    assert after.images[0].png == before.images[0].png  # the new engine makes the same image


async def test_hung_engine_is_caught_by_the_watchdog(slow_engine: EngineProcess) -> None:
    hung_pid = slow_engine.pid

    def freeze_at_first_step(progress: Progress) -> None:
        if progress.step == 1:
            os.kill(hung_pid, signal.SIGSTOP)  # alive but silent, as a wedged GPU driver would leave it

    [hung] = await slow_engine.generate([job("hung", 1)], freeze_at_first_step)
    assert hung.outcome == Outcome.FAILED and hung.retryable
    assert hung.error == HUNG
    [after] = await slow_engine.generate([job("after", 2, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert slow_engine.pid != hung_pid
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)  # the frozen engine was killed, not left behind


async def test_an_engine_that_dies_while_idle_is_replaced_before_the_next_job(slow_engine: EngineProcess) -> None:
    idle_pid, restarts = slow_engine.pid, slow_engine.health().restarts
    os.kill(idle_pid, signal.SIGKILL)
    while slow_engine.pid == idle_pid:  # until the client notices (a job sent in the instant before fails as crashed)
        await asyncio.sleep(0.01)
    [after] = await slow_engine.generate([job("after", 3, params=QUICK)])
    assert after.outcome == Outcome.DONE
    assert slow_engine.pid != idle_pid and slow_engine.health().restarts == restarts + 1


async def test_out_of_memory_in_the_engine_process_shrinks_the_batch(tiny_model: Path) -> None:
    settings = EngineSettings(model=str(tiny_model), device="cpu")
    async with EngineProcess(settings, faults=EngineFaults(oom_above_images=1)) as engine:
        [result] = await engine.generate([job("big", 1, 2, 3, 4, params=QUICK)])
        [alone] = await engine.generate([job("alone", 3, params=QUICK)])
        assert result.outcome == Outcome.DONE and len(result.images) == 4
        assert engine.health().extra["oom_retries"] == 2  # 4 -> 2 -> 1 images per UNet batch
        assert result.images[2].png == alone.images[0].png


async def test_a_model_that_does_not_load_fails_the_start_clearly(tmp_path: Path) -> None:
    engine = EngineProcess(EngineSettings(model=str(tmp_path / "missing"), device="cpu"))
    with pytest.raises(EngineStartError, match="could not load the model"):
        await engine.start()
    await engine.close()


async def test_closing_fails_the_running_batch_and_later_jobs_clearly(tiny_model: Path) -> None:
    engine = EngineProcess(EngineSettings(model=str(tiny_model), device="cpu"), faults=EngineFaults(step_delay_s=0.2))
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
