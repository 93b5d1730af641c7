"""Random interleavings of submit, cancel, engine crashes and restarts: no job is lost, none runs to completion
or is delivered twice, and every quota charge is kept or refunded exactly."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduler.clock import VirtualClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings
from bot.scheduler.errors import DreamError, ServiceStopped
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState, Member
from tests.scheduler.harness import GENEROUS, GUILD, Harness

DAY_START = 1_700_006_400.0  # 2023-11-15 00:00 UTC: the whole run stays within one quota day

operation = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 4), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("crash"), st.integers(1, 6)),
    st.tuples(st.just("advance"), st.floats(0.0, 4.0)),
    st.tuples(st.just("restart"), st.sampled_from([0.0, 60.0])),
)


async def scenario(path: Path, operations: list[tuple]) -> None:
    clock = VirtualClock(start=DAY_START + 3600)
    tier = GENEROUS.model_copy(update={"burst": 12, "rate_per_hour": 3600.0, "daily_images": 40, "max_queued": 4})
    harness = Harness(
        path, clock, SchedulerSettings(requeue_on_failure=1), QuotaSettings(tiers={"default": tier}),
        max_batch_images=4, seconds_per_step=0.1,
    )
    await harness.start()
    admitted: list[int] = []
    keys: list[str] = []
    posts: collections.Counter[int] = collections.Counter()
    cancels: list[asyncio.Task] = []

    async def post(job_id: int) -> None:
        """What the Discord layer does with a finished job: post it, then record the delivery."""
        posts[job_id] += 1
        assert await harness.service.record_delivery(GUILD, job_id, message_id=1000 + job_id)

    told: set[int] = set()

    async def tell(job_id: int) -> None:
        """What the Discord layer does with a job that ended without images: tell its member, once per process
        (a job given up at start-up is both in the journal's list and in the events), and record it."""
        if job_id not in told:
            told.add(job_id)
            assert await harness.service.record_told(GUILD, job_id)

    async def deliver_new_events() -> None:
        for event in harness.collect():
            if event.kind is EventKind.DONE:
                await post(event.job_id)
            elif event.kind in (EventKind.FAILED, EventKind.CANCELLED) or (
                event.kind is EventKind.INTERRUPTED and not event.requeued
            ):
                await tell(event.job_id)

    async def restart(grace: float) -> None:
        await harness.stop(grace)  # events not yet handled are lost with the "process"
        told.clear()  # ... and so is what it remembered
        await harness.start()
        for ended in await harness.service.undelivered():
            await (post if ended.state is JobState.DONE else tell)(ended.job_id)

    for op in operations:
        kind = op[0]
        if kind == "submit":
            _, member, images, reuse = op
            key = keys[-1] if reuse and keys else f"interaction-{len(keys)}"
            keys.append(key)
            try:
                admission = await harness.submit(member, images, key=key)
            except DreamError:
                pass
            else:
                if not admission.duplicate:
                    admitted.append(admission.job.job_id)
        elif kind == "cancel" and admitted:
            job_id = admitted[op[1] % len(admitted)]
            owner = (await harness.service.job(GUILD, job_id)).member_id
            cancels.append(asyncio.create_task(harness.service.cancel(GUILD, job_id, owner if not op[2] else 0, moderator=op[2])))
        elif kind == "crash":
            harness.engine.crash_next_batch(at_step=op[1])
        elif kind == "advance":
            await clock.advance(op[1])
        elif kind == "restart":
            await restart(op[1])
        await clock.settle()
        await deliver_new_events()

    for _ in range(3):  # crashes may be pending; a couple more lives drain everything
        await harness.drain()
        await deliver_new_events()
        await restart(60.0)
    await harness.drain()
    await deliver_new_events()
    for task in cancels:
        try:
            await task
        except ServiceStopped:
            pass

    async with harness.db.conn.execute("SELECT id, member_id, state, attempts, seeds FROM jobs") as cursor:
        rows = {row[0]: tuple(row[1:]) for row in await cursor.fetchall()}
    harness.collect()
    started = collections.Counter(event.job_id for event in harness.events if event.kind is EventKind.STARTED)
    done_events = collections.Counter(event.job_id for event in harness.events if event.kind is EventKind.DONE)

    # Nothing lost: every admitted job has its one row, and every row reached a final state.
    assert sorted(rows) == sorted(admitted)
    assert all(JobState(state).final for _, state, _, _ in rows.values())
    for job_id, (member, state, attempts, seeds) in rows.items():
        # Never run twice: each hand-over to the engine is one recorded attempt, at most one retry after a crash.
        assert started[job_id] <= attempts <= 2
        assert done_events[job_id] <= 1
        # Delivered exactly once if done, never otherwise.
        assert posts[job_id] == (1 if state == "done" else 0)
    # Quotas: what stays charged today is exactly the images of the jobs that completed.
    for member in {member for member, *_ in rows.values()}:
        done_images = sum(len(json.loads(seeds)) for m, state, _, seeds in rows.values() if m == member and state == "done")
        status = harness.service.quota_status(GUILD, Member(member))
        assert status.daily_left == tier.daily_images - done_images
        assert harness.service.quotas.state((GUILD, member)).charges == []
    async with harness.db.conn.execute("SELECT member_id, day_images, charges FROM quota_state WHERE guild_id = ?", (GUILD,)) as cursor:
        for member, day_images, charges in await cursor.fetchall():
            assert (day_images, json.loads(charges)) == (harness.service.quotas.state((GUILD, member)).day_images, [])
    await harness.stop()


@settings(max_examples=100, deadline=None)
@given(st.lists(operation, min_size=1, max_size=40))
def test_no_job_is_lost_or_run_twice_and_refunds_are_exact(operations: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(Path(folder) / "dq.db", operations))


def test_scheduler_imports_neither_discord_nor_torch() -> None:
    code = (
        "import sys, bot.scheduler.service, engine.simulated; "
        "print(sorted(m for m in ('discord', 'torch') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
