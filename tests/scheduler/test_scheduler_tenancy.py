"""Every server on its own: job numbers, lookups, cancels, bans, tiers, overrides, quotas and the audit log of one
server never reach another's; pause, the multiplier and server weights are the operator's, for all."""

from __future__ import annotations

import pytest

from bot.scheduler.errors import Banned, JobNotFound, QuotaExceeded
from bot.scheduler.events import EventKind
from bot.scheduler.models import JobState, Member
from tests.scheduler.harness import Harness

A, B = 1, 2


async def test_job_numbers_count_per_server_and_survive_a_restart(harness: Harness) -> None:
    await harness.service.pause(actor_id=9)
    jobs = [await harness.submit(1, guild=guild) for guild in (A, B, A, A, B)]
    assert [(job.job.guild_id, job.job.number) for job in jobs] == [(A, 1), (B, 1), (A, 2), (A, 3), (B, 2)]
    assert (await harness.service.job_by_number(A, 2)).job_id == jobs[2].job.job_id
    await harness.restart()
    after = await harness.submit(1, guild=A)
    assert after.job.number == 4 and after.job.job_id == jobs[-1].job.job_id + 1
    assert [event.number for event in harness.collect() if event.job_id == after.job.job_id] == [4]


async def test_a_restart_recovers_each_servers_jobs_and_rules_in_the_original_order(harness: Harness) -> None:
    service = harness.service
    await service.pause(actor_id=9)
    await service.ban(7, B, 5, reason="spam")
    await service.set_member_override(7, A, 2, "max_queued", 5)
    jobs = [await harness.submit(member, guild=guild) for member, guild in ((1, A), (2, B), (2, A), (3, B), (1, A))]
    await harness.restart()
    service = harness.service
    recovered = [event.job_id for event in harness.collect() if event.kind is EventKind.QUEUED and event.recovered]
    assert recovered == [job.job.job_id for job in jobs]  # read server by server, queued as admitted
    assert [view.number for view in service.active_jobs(A)] == [1, 2, 3]
    assert [view.number for view in service.active_jobs(B)] == [1, 2]
    assert service.quota_status(B, Member(5)).banned and not service.quota_status(A, Member(5)).banned
    assert service.quota_status(A, Member(2)).limits.max_queued == 5
    assert service.quota_status(B, Member(2)).limits.max_queued != 5
    await service.resume(actor_id=9)
    await harness.drain()
    owed = await service.undelivered()  # posted after a restart: read server by server, oldest first
    assert [(view.guild_id, view.job_id) for view in owed] == [(job.job.guild_id, job.job.job_id) for job in jobs]
    assert all(view.images for view in owed)


async def test_another_servers_job_is_no_such_job(harness: Harness) -> None:
    theirs = await harness.submit(1, guild=A)
    await harness.drain()
    for lookup in (
        harness.service.job(B, theirs.job.job_id),
        harness.service.job_by_number(B, theirs.job.number),
        harness.service.placement(B, theirs.job.job_id),
        harness.service.cancel(B, theirs.job.job_id, actor_id=1, moderator=True),
    ):
        with pytest.raises(JobNotFound, match=r"There is no (such job|job #\d+) in this server"):
            await lookup
    assert await harness.service.images(B, theirs.job.job_id) == ()
    assert not await harness.service.record_undeliverable(B, theirs.job.job_id, "not yours to mark")
    assert harness.service.active_jobs(B) == [] and await harness.service.member_jobs(B, 1) == []


async def test_a_moderator_cancels_only_in_their_server(harness: Harness) -> None:
    await harness.service.pause(actor_id=9)
    mine, theirs = await harness.submit(1, guild=A), await harness.submit(1, guild=B)
    with pytest.raises(JobNotFound):
        await harness.service.cancel(A, theirs.job.job_id, actor_id=7, moderator=True)
    assert (await harness.service.cancel(A, mine.job.job_id, actor_id=7, moderator=True)).state is JobState.CANCELLED
    assert (await harness.service.job(B, theirs.job.job_id)).state is JobState.QUEUED
    [entry] = await harness.service.audit_log(A)
    assert (entry.guild_id, entry.action) == (A, "cancel") and await harness.service.audit_log(B) == []


async def test_bans_tiers_overrides_and_quotas_are_per_server(harness: Harness) -> None:
    service = harness.service
    await service.ban(7, A, 1, reason="spam")
    await service.set_tier_limit(7, A, "default", "max_images", 2)
    await service.set_member_override(7, A, 2, "daily_images", 3)
    with pytest.raises(Banned):
        await harness.submit(1, guild=A)
    await harness.submit(1, guild=B)  # banned in A only
    assert service.tier_limits(A, "default")["max_images"] == 2
    assert service.tier_limits(B, "default")["max_images"] != 2
    assert service.quota_status(A, Member(2)).limits.daily_images == 3
    await harness.submit(2, images=3, guild=B)  # A's limits do not follow member 2 to B
    await harness.submit(2, images=2, guild=A)
    with pytest.raises(QuotaExceeded):
        await harness.submit(2, images=2, guild=A)
    assert service.quota_status(B, Member(2)).daily_left == service.quota_status(B, Member(3)).daily_left - 3
    await harness.restart()
    service = harness.service
    assert service.quota_status(A, Member(1)).banned and not service.quota_status(B, Member(1)).banned
    assert service.quota_status(A, Member(2)).limits.daily_images == 3
    assert not await service.unban(7, B, 1) and await service.unban(7, A, 1)
    assert [entry.action for entry in await service.audit_log(A)] == ["unban", "set_override", "set_tier_limit", "ban"]
    assert await service.audit_log(B) == []


async def test_server_weights_are_the_operators_and_survive_a_restart(harness: Harness) -> None:
    assert harness.service.server_weight(A) == 1.0
    assert await harness.service.set_server_weight(9, A, 2.5) == 2.5
    await harness.restart()
    assert harness.service.server_weight(A) == 2.5 and harness.service.stats(A).server_weight == 2.5
    [entry] = await harness.service.audit_log(0)
    assert (entry.guild_id, entry.action, entry.target, entry.before, entry.after) == (
        0, "set_server_weight", f"server {A}", 1.0, 2.5
    )


async def test_the_queue_summary_is_the_servers_own_with_the_whole_queues_length(harness: Harness) -> None:
    await harness.service.pause(actor_id=9)
    await harness.submit(1, images=2, guild=A)
    await harness.submit(2, guild=B)
    await harness.submit(3, guild=B)
    summary = harness.service.queue_summary(A)
    assert (summary.queued_jobs, summary.queued_images, summary.members_waiting, summary.all_queued_jobs) == (
        1, 2, 1, 3
    )
    assert harness.service.stats(B).queued_jobs == 2
