"""Relax mode: free of the quota, queued at a fraction of the member's weight, capped per member, kept through a
restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.scheduler.clock import VirtualClock
from bot.scheduler.config import SchedulerSettings
from bot.scheduler.errors import RelaxQueueFull
from bot.scheduler.events import EventKind
from bot.scheduler.models import Admission, DreamRequest, JobState, Member
from bot.scheduler.modes import Mode, RelaxTerms
from tests.scheduler.harness import GUILD, Harness, settings

FAST, RELAX = 1, 2


async def dream(harness: Harness, member: int, mode: Mode, images: int = 1) -> Admission:
    harness.keys += 1
    return await harness.service.submit(DreamRequest(
        member=Member(member), guild_id=GUILD, prompt="a lighthouse", seeds=tuple(range(images)),
        idempotency_key=f"key-{harness.keys}", mode=mode, style="oil",
    ))  # fmt: skip


async def make(tmp_path: Path, clock: VirtualClock, **quotas: object) -> Harness:
    _, tiered = settings(burst=8, rate_per_hour=1, daily_images=8)
    harness = Harness(tmp_path / "dq.db", clock, SchedulerSettings(), tiered.model_copy(update=quotas),
                      max_batch_images=1)  # fmt: skip
    await harness.start()
    return harness


async def test_a_backlogged_relax_member_gets_about_relax_weights_share_even_after_a_restart(
    tmp_path: Path, clock: VirtualClock
) -> None:
    harness = await make(tmp_path, clock, relax_max_jobs=100,
                         tiers={"default": settings(burst=100, daily_images=100)[1].tiers["default"]})  # fmt: skip
    await harness.service.pause(actor_id=9)
    for _ in range(60):
        await dream(harness, FAST, "fast")
    relax_jobs = [(await dream(harness, RELAX, "relax")).job.job_id for _ in range(10)]
    await harness.restart()  # the queued relax jobs come back as relax, at the low weight
    assert {(await harness.service.job(GUILD, job_id)).mode for job_id in relax_jobs} == {"relax"}
    await harness.service.resume(actor_id=9)
    await harness.drain()
    done = [event.member_id for event in harness.collect() if event.kind is EventKind.DONE]
    assert len(done) == 70
    first = done[:55]  # while both were backlogged
    assert 4 <= first.count(RELAX) <= 6, first  # 0.1 of a fast member's weight: 1 job in 11
    await harness.stop()


async def test_relax_is_free_of_the_quota_and_capped_per_member(tmp_path: Path, clock: VirtualClock) -> None:
    harness = await make(tmp_path, clock, relax_max_jobs=2)
    service = harness.service
    await service.pause(actor_id=9)
    before = service.quota_status(GUILD, Member(RELAX))
    first, second = await dream(harness, RELAX, "relax", images=4), await dream(harness, RELAX, "relax", images=4)
    after = service.quota_status(GUILD, Member(RELAX))
    assert (after.burst_left, after.daily_left) == (before.burst_left, before.daily_left) == (8, 8)
    assert (after.relax, after.relax_jobs) == (RelaxTerms(0.1, 2), 2)
    with pytest.raises(RelaxQueueFull, match="You already have 2 relax jobs in the queue"):
        await dream(harness, RELAX, "relax")
    fast = await dream(harness, RELAX, "fast", images=4)  # the cap is relax's alone; fast is charged
    assert service.quota_status(GUILD, Member(RELAX)).burst_left == 4
    cancelled = await service.cancel(GUILD, first.job.job_id, RELAX)  # nothing was charged: nothing refunded
    assert cancelled.state is JobState.CANCELLED and service.quota_status(GUILD, Member(RELAX)).burst_left == 4
    await harness.restart()
    await harness.service.resume(actor_id=9)
    await harness.drain()
    assert [(await harness.service.job(GUILD, a.job.job_id)).state for a in (second, fast)] == [JobState.DONE] * 2
    status = harness.service.quota_status(GUILD, Member(RELAX))
    assert (status.burst_left, status.daily_left, status.relax_jobs) == (4, 4, 0)
    assert (await harness.service.job(GUILD, second.job.job_id)).style == "oil"
    await harness.stop()


async def test_each_server_has_its_own_relax_terms(tmp_path: Path, clock: VirtualClock) -> None:
    scheduler, quotas = settings()
    terms = {GUILD: RelaxTerms(0.5, 0)}
    harness = Harness(tmp_path / "dq.db", clock, scheduler, quotas,
                      relax_terms=lambda guild_id: terms.get(guild_id, RelaxTerms()))  # fmt: skip
    service = await harness.start()
    with pytest.raises(RelaxQueueFull, match="This server has no relax mode"):
        await service.submit(DreamRequest(Member(1), GUILD, "a cat", (1,), "k1", mode="relax"))
    other = await service.submit(DreamRequest(Member(1), GUILD + 1, "a cat", (1,), "k2", mode="relax"))
    assert other.job.mode == "relax" and service.quota_status(GUILD + 1, Member(1)).relax == RelaxTerms()
    assert service.quota_status(GUILD, Member(1)).relax == RelaxTerms(0.5, 0)
    await harness.stop()
