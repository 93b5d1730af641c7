"""The service end to end on a virtual clock: admission, refusals, cancel, engine failures, events, delivery."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.scheduler.clock import VirtualClock
from bot.scheduler.config import QuotaSettings, SchedulerSettings, TierSettings
from bot.scheduler.errors import (
    Banned,
    DreamError,
    InvalidRequest,
    JobNotFound,
    MemberQueueFull,
    NotYourJob,
    OverTierLimit,
    Paused,
    QueueFull,
    QuotaExceeded,
    ServerQueueFull,
    ServiceStopped,
)
from bot.scheduler.events import EventKind
from bot.scheduler.models import DreamRequest, JobState, Member
from tests.scheduler.harness import GENEROUS, GUILD, Harness, settings


async def rows(harness: Harness, sql: str, *params: object) -> list[tuple]:
    async with harness.db.conn.execute(sql, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def test_admission_is_durable_and_reports_position_and_eta(harness: Harness) -> None:
    await harness.service.pause(actor_id=9)
    first = await harness.submit(1, images=2)
    second = await harness.submit(2, images=1)
    assert first.job.state is JobState.QUEUED and not first.duplicate
    assert (await rows(harness, "SELECT id, member_id, state, cost FROM jobs ORDER BY id")) == [
        (first.job.job_id, 1, "queued", 2 * 10 * 64), (second.job.job_id, 2, "queued", 10 * 64),
    ]
    assert (first.placement.position, second.placement.position) == (1, 2)
    # Nothing measured yet: the ETA uses the assumed 0.1 s per 512x512 image step, and prices the one job ahead
    # at the queue's mean job cost (1.5 images x 10 steps), plus its own 1 image x 10 steps.
    assert second.placement.eta_seconds == pytest.approx(2.5)
    summary = harness.service.queue_summary(GUILD)
    assert (summary.queued_jobs, summary.queued_images, summary.members_waiting) == (2, 3, 2)
    assert [job.job_id for job in harness.service.active_jobs(GUILD, member_id=2)] == [second.job.job_id]
    await harness.service.resume(actor_id=9)
    await harness.drain()
    assert harness.kinds(first.job.job_id) == [
        EventKind.QUEUED, EventKind.STARTED, *[EventKind.PROGRESS] * 10, EventKind.DONE,
    ]
    stats = harness.service.stats(GUILD)
    assert stats.jobs_last_hour == 2 and stats.images_last_hour == 3
    assert stats.seconds_per_image_step == pytest.approx(0.1, rel=1e-3)  # the engine really takes 0.1 s a step
    assert stats.duty_cycle == pytest.approx(1.0)


async def test_same_interaction_id_never_runs_twice(harness: Harness) -> None:
    one, two = await asyncio.gather(harness.submit(1, key="interaction-1"), harness.submit(1, key="interaction-1"))
    assert {one.duplicate, two.duplicate} == {False, True}
    assert one.job.job_id == two.job.job_id
    await harness.drain()
    again = await harness.submit(1, key="interaction-1")
    assert again.duplicate and again.job.state is JobState.DONE
    await harness.restart()
    after_restart = await harness.submit(1, key="interaction-1")
    assert after_restart.duplicate and after_restart.job.job_id == one.job.job_id
    assert (await rows(harness, "SELECT count(*) FROM jobs")) == [(1,)]


async def test_a_key_only_the_journal_remembers_is_still_a_duplicate(harness: Harness) -> None:
    harness.scheduler = SchedulerSettings(idempotency_window_hours=1)
    await harness.restart()
    first = await harness.submit(1, key="old-interaction")
    await harness.drain()
    await harness.clock.advance(2 * 3600)
    await harness.restart()  # the key is now older than the in-memory window
    quota = harness.service.quota_status(GUILD, Member(1))
    again = await harness.submit(1, key="old-interaction")
    assert again.duplicate and again.job.job_id == first.job.job_id
    assert harness.service.quota_status(GUILD, Member(1)) == quota  # the duplicate's charge was undone


async def test_refusals_say_why(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="width"):
        await harness.submit(1, width=513)
    with pytest.raises(OverTierLimit, match=r"allows steps up to 50; this request asks for 60"):
        harness.quotas = QuotaSettings(tiers={"default": GENEROUS.model_copy(update={"max_steps": 50})})
        await harness.restart()
        await harness.submit(1, steps=60)
    await harness.service.ban(99, GUILD, 1, reason="spam")
    with pytest.raises(Banned, match="Reason: spam"):
        await harness.submit(1)


async def test_queue_caps(tmp_path: Path, clock) -> None:
    harness = Harness(
        tmp_path / "dq.db", clock, SchedulerSettings(max_queued_jobs=3),
        QuotaSettings(tiers={"default": GENEROUS.model_copy(update={"max_queued": 2})}),
    )
    await harness.start()
    await harness.submit(1)
    await harness.submit(1)
    with pytest.raises(MemberQueueFull, match="You already have 2 jobs"):
        await harness.submit(1)
    await harness.submit(2)
    with pytest.raises(QueueFull, match=r"3 jobs are waiting or running across all servers, its limit; try again in"):
        await harness.submit(3)
    await harness.drain()
    await harness.submit(3)
    await harness.stop()


async def test_a_flooding_server_hits_its_own_cap_while_a_small_server_still_gets_in(tmp_path: Path, clock) -> None:
    harness = Harness(
        tmp_path / "dq.db", clock, SchedulerSettings(max_queued_jobs=5, max_queued_jobs_per_server=3),
        QuotaSettings(tiers={"default": GENEROUS}),
    )
    await harness.start()
    big, small = 7, 8
    for member in (1, 2, 3):
        await harness.submit(member, guild=big)
    with pytest.raises(ServerQueueFull, match=r"This server's share of the queue is full: 3 of its jobs"):
        await harness.submit(4, guild=big)
    await harness.submit(1, guild=small)  # the small server still gets in
    await harness.submit(2, guild=small)
    with pytest.raises(QueueFull, match="across all servers"):  # the operator's ceiling stays
        await harness.submit(3, guild=9)
    await harness.drain()
    await harness.submit(4, guild=big)
    await harness.stop()



async def test_quota_refusal_names_the_limit_and_reset(tmp_path: Path, clock) -> None:
    tier = TierSettings(burst=4, rate_per_hour=60, daily_images=100, max_images=4, max_queued=10)
    harness = Harness(tmp_path / "dq.db", clock, SchedulerSettings(), QuotaSettings(tiers={"default": tier}))
    await harness.start()
    await harness.submit(1, images=4)
    with pytest.raises(QuotaExceeded) as caught:
        await harness.submit(1, images=1)
    assert caught.value.limit == "burst"
    assert caught.value.reset_at == pytest.approx(clock.now() + 60)
    status = harness.service.quota_status(GUILD, Member(1))
    assert (status.tier, status.burst_left, status.daily_left) == ("default", 0, 96)
    assert status.next_image_at == pytest.approx(clock.now() + 60)
    await harness.stop()


async def test_tier_change_applies_to_the_next_request(tmp_path: Path, clock) -> None:
    quotas = QuotaSettings(
        tiers={"default": TierSettings(burst=2, max_images=2), "supporter": TierSettings(roles=(111,))}
    )
    harness = Harness(tmp_path / "dq.db", clock, SchedulerSettings(), quotas)
    service = await harness.start()
    member = Member(1)
    with pytest.raises(OverTierLimit):
        await harness.submit(member, images=3)
    await service.set_tier_limit(42, GUILD, "default", "burst", 6)
    await service.set_tier_limit(42, GUILD, "default", "max_images", 4)
    await harness.submit(member, images=3)
    # A role change shows up with the roles of the next request.
    promoted = Member(1, role_ids=(111,))
    assert service.quota_status(GUILD, promoted).tier == "supporter"
    await harness.submit(promoted, images=4)
    other = Member(2)
    await service.set_tier_limit(42, GUILD, "default", "max_images", 1)
    with pytest.raises(OverTierLimit):
        await harness.submit(other, images=2)
    await service.set_member_override(42, GUILD, other.id, "max_images", 3)
    await harness.submit(other, images=3)
    await harness.stop()


async def test_cancel_queued_and_running_jobs_refunds(harness: Harness) -> None:
    service = harness.service
    running = await harness.submit(1, images=2, steps=50)
    queued = await harness.submit(1, images=3)
    await harness.clock.advance(1.0)
    before = service.quota_status(GUILD, Member(1)).daily_left
    with pytest.raises(NotYourJob):
        await service.cancel(GUILD, queued.job.job_id, actor_id=2)
    view = await service.cancel(GUILD, queued.job.job_id, actor_id=1)
    assert view.state is JobState.CANCELLED
    assert service.quota_status(GUILD, Member(1)).daily_left == before + 3
    cancelling = asyncio.create_task(service.cancel(GUILD, running.job.job_id, actor_id=7, moderator=True))
    view = await harness.clock.run(cancelling)
    assert view.state is JobState.CANCELLED and view.error == "cancelled by a moderator"
    assert service.quota_status(GUILD, Member(1)).daily_left == before + 5
    assert harness.kinds(running.job.job_id)[-1] is EventKind.CANCELLED
    assert (await rows(harness, "SELECT state FROM jobs ORDER BY id")) == [("cancelled",), ("cancelled",)]
    with pytest.raises(JobNotFound):
        await service.cancel(GUILD, 12345, actor_id=1)
    # Only the moderator's cancel of someone else's job is audited; the member's own is not.
    [entry] = await service.audit_log(GUILD)
    assert (entry.actor_id, entry.action, entry.target, entry.before, entry.after) == (
        7, "cancel", f"job #{running.job.number} of member 1", {"state": "running"},
        {"state": "cancelled", "error": "cancelled by a moderator"},
    )


async def test_a_moderator_cancelling_a_queued_job_is_audited(harness: Harness) -> None:
    await harness.submit(2, steps=50)  # runs, so the next one waits
    queued = await harness.submit(1)
    await harness.clock.advance(1.0)
    view = await harness.service.cancel(GUILD, queued.job.job_id, actor_id=7, moderator=True)
    assert view.error == "cancelled by a moderator"
    [entry] = await harness.service.audit_log(GUILD)
    assert (entry.actor_id, entry.action, entry.before, entry.after["state"]) == (7, "cancel", {"state": "queued"},
                                                                                 "cancelled")


async def test_engine_crash_requeues_once_then_fails_and_refunds(harness: Harness) -> None:
    job = await harness.submit(1, images=2)
    harness.engine.crash_next_batch(at_step=3)
    harness.engine.crash_next_batch(at_step=3)
    await harness.drain()
    kinds = harness.kinds(job.job.job_id)
    assert kinds.count(EventKind.STARTED) == 2
    assert kinds.count(EventKind.REQUEUED) == 1
    assert kinds[-1] is EventKind.FAILED
    view = await harness.service.job(GUILD, job.job.job_id)
    assert (view.state, view.attempts, view.error) == (JobState.FAILED, 2, "the engine crashed")
    assert harness.service.quota_status(GUILD, Member(1)).daily_left == GENEROUS.daily_images
    # The crashes did not stall anything: the next job runs.
    later = await harness.submit(1)
    await harness.drain()
    assert (await harness.service.job(GUILD, later.job.job_id)).state is JobState.DONE


async def test_pause_runs_nothing_and_can_refuse(harness: Harness, tmp_path: Path) -> None:
    service = harness.service
    await service.pause(5)
    job = await harness.submit(1)
    await harness.clock.advance(60)
    assert (await service.job(GUILD, job.job.job_id)).state is JobState.QUEUED
    assert service.queue_summary(GUILD).paused
    await service.resume(5)
    await harness.drain()
    assert (await service.job(GUILD, job.job.job_id)).state is JobState.DONE
    harness.scheduler = SchedulerSettings(accept_while_paused=False)
    await harness.restart()
    await harness.service.pause(5)
    await harness.restart()  # the pause survives a restart
    with pytest.raises(Paused):
        await harness.submit(1)


async def test_delivery_is_recorded_exactly_once_and_survives_restart(harness: Harness) -> None:
    job = await harness.submit(1, images=2)
    await harness.drain()
    done = [event for event in harness.collect() if event.kind is EventKind.DONE]
    assert len(done) == 1 and len(done[0].images) == 2
    await harness.restart()  # "crashed" before posting
    (pending,) = await harness.service.undelivered()
    assert pending.job_id == job.job.job_id and pending.images == done[0].images
    assert await harness.service.record_delivery(GUILD, job.job.job_id, message_id=555)
    assert not await harness.service.record_delivery(GUILD, job.job.job_id, message_id=556)
    assert await harness.service.undelivered() == []
    assert (await harness.service.job(GUILD, job.job.job_id)).result_message_id == 555


async def test_an_undeliverable_result_is_recorded_and_not_offered_again(harness: Harness) -> None:
    lost, posted = await harness.submit(1), await harness.submit(2)
    await harness.drain()
    assert await harness.service.record_undeliverable(GUILD, lost.job.job_id, "its channel was deleted")
    assert not await harness.service.record_undeliverable(GUILD, lost.job.job_id, "again")
    await harness.restart()
    assert [finished.job_id for finished in await harness.service.undelivered()] == [posted.job.job_id]
    assert (await harness.service.job(GUILD, lost.job.job_id)).undeliverable == "its channel was deleted"
    await harness.service.record_delivery(GUILD, posted.job.job_id, message_id=556)
    assert not await harness.service.record_undeliverable(GUILD, posted.job.job_id, "too late: it was posted")


async def test_member_jobs_are_newest_first_in_every_state(harness: Harness) -> None:
    done = await harness.submit(1)
    await harness.drain()
    await harness.submit(2)
    cancelled = await harness.submit(1)
    await harness.service.cancel(GUILD, cancelled.job.job_id, actor_id=1)
    queued = await harness.submit(1)
    jobs = await harness.service.member_jobs(GUILD, 1)
    assert [(job.job_id, job.state) for job in jobs] == [
        (queued.job.job_id, JobState.QUEUED), (cancelled.job.job_id, JobState.CANCELLED),
        (done.job.job_id, JobState.DONE),
    ]
    assert [job.job_id for job in await harness.service.member_jobs(GUILD, 1, limit=1)] == [queued.job.job_id]


async def test_restart_resumes_queued_in_order_and_reports_interrupted(harness: Harness) -> None:
    running = await harness.submit(1, steps=50)
    queued = [await harness.submit(member) for member in (2, 3, 4)]
    await harness.clock.advance(1.0)
    await harness.restart(grace_s=0)  # the bot dies mid-batch
    events = harness.collect()
    interrupted = [event for event in events if event.kind is EventKind.INTERRUPTED]
    assert [(event.job_id, event.requeued) for event in interrupted] == [(running.job.job_id, True)]
    recovered = [event.job_id for event in events if event.kind is EventKind.QUEUED and event.recovered]
    assert recovered == [admission.job.job_id for admission in queued]
    await harness.drain()
    assert (await harness.service.job(GUILD, running.job.job_id)).attempts == 2
    states = await rows(harness, "SELECT state FROM jobs")
    assert set(states) == {("done",)}


async def test_a_job_interrupted_twice_is_given_up_and_refunded(harness: Harness) -> None:
    job = await harness.submit(1, steps=50)
    for _ in range(2):
        await harness.clock.advance(1.0)
        await harness.restart(grace_s=0)
    assert harness.kinds(job.job.job_id)[-1] is EventKind.INTERRUPTED
    view = await harness.service.job(GUILD, job.job.job_id)
    assert view.state is JobState.INTERRUPTED
    assert harness.service.quota_status(GUILD, Member(1)).daily_left == GENEROUS.daily_images


async def test_corrupt_journal_row_fails_that_job_only(harness: Harness) -> None:
    bad = await harness.submit(1)
    good = await harness.submit(2)
    await harness.stop()
    with sqlite3.connect(harness.path) as raw:
        raw.execute("UPDATE jobs SET params = '{not json' WHERE id = ?", (bad.job.job_id,))
    await harness.start()
    assert harness.kinds(bad.job.job_id)[-1] is EventKind.FAILED
    await harness.drain()
    assert (await harness.service.job(GUILD, bad.job.job_id)).state is JobState.FAILED
    assert (await harness.service.job(GUILD, good.job.job_id)).state is JobState.DONE


async def test_missing_journal_row_fails_the_job_and_tells_the_member(harness: Harness) -> None:
    await harness.service.pause(1)
    victim = await harness.submit(1)
    other = await harness.submit(2)
    async with harness.db.transaction() as conn:
        await conn.execute("DELETE FROM jobs WHERE id = ?", (victim.job.job_id,))
    await harness.service.resume(1)
    await harness.drain()
    failed = [e for e in harness.collect() if e.job_id == victim.job.job_id and e.kind is EventKind.FAILED]
    assert failed and failed[0].channel_id == 2 and "record was lost" in failed[0].error
    assert (await harness.service.job(GUILD, other.job.job_id)).state is JobState.DONE


async def test_submit_after_close_is_refused(harness: Harness) -> None:
    await harness.service.close()
    with pytest.raises(ServiceStopped):
        await harness.service.submit(DreamRequest(Member(1), GUILD, "a cat", (1,), "late"))


async def test_admin_changes_are_audited_and_survive_restart(harness: Harness) -> None:
    service = harness.service
    await service.set_tier_limit(7, GUILD, "default", "daily_images", 20)
    await service.set_member_override(7, GUILD, 1, "daily_images", 5)
    await service.set_multiplier(7, 0.5)
    ban = await service.ban(7, GUILD, 2, until=harness.clock.now() + 600, reason="flooding")
    await service.pause(7)
    await service.resume(7)
    await harness.restart()
    service = harness.service
    assert service.tier_limits(GUILD, "default")["daily_images"] == 20
    assert service.quota_status(GUILD, Member(3)).limits.daily_images == 10  # tier 20, halved by the multiplier
    assert service.quota_status(GUILD, Member(1)).limits.daily_images == 5  # an override is absolute
    assert service.quota_status(GUILD, Member(2)).banned_until == ban.until
    entries = await service.audit_log(GUILD)
    assert [(e.actor_id, e.action, e.target, e.before, e.after) for e in reversed(entries)] == [
        (7, "set_tier_limit", "tier default: daily_images", GENEROUS.daily_images, 20),
        (7, "set_override", "member 1: daily_images", None, 5),
        (7, "ban", "member 2", None, {"until": ban.until, "reason": "flooding", "by": 7}),
    ]
    # The operator's changes to what every server shares are audited under guild 0, not in a server's log.
    shared = await service.audit_log(0)
    assert [(e.guild_id, e.action, e.before, e.after) for e in reversed(shared)] == [
        (0, "set_multiplier", 1.0, 0.5), (0, "pause", False, True), (0, "resume", True, False),
    ]
    assert await service.audit_log(GUILD + 1) == []
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with harness.db.transaction() as conn:
            await conn.execute("UPDATE admin_audit SET actor_id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        async with harness.db.transaction() as conn:
            await conn.execute("DELETE FROM admin_audit")
    await service.set_tier_limit(8, GUILD, "default", "daily_images", None)  # back to config
    assert service.tier_limits(GUILD, "default")["daily_images"] == GENEROUS.daily_images


async def test_bans_expire_and_lift(harness: Harness) -> None:
    service = harness.service
    await service.ban(7, GUILD, 1, until=harness.clock.now() + 60)
    with pytest.raises(Banned, match="for another 60 seconds"):
        await harness.submit(1)
    await harness.clock.advance(61)
    await harness.submit(1)
    await service.ban(7, GUILD, 1)
    with pytest.raises(Banned):
        await harness.submit(1)
    assert await service.unban(7, GUILD, 1)
    assert not await service.unban(7, GUILD, 1)
    await harness.submit(1)


async def test_ban_cancels_queued_jobs(harness: Harness) -> None:
    await harness.service.pause(7)
    jobs = [await harness.submit(1) for _ in range(2)]
    await harness.service.ban(7, GUILD, 1, reason="spam")
    for job in jobs:
        assert (await harness.service.job(GUILD, job.job.job_id)).state is JobState.CANCELLED
    assert harness.service.quota_status(GUILD, Member(1)).daily_left == GENEROUS.daily_images


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.set_tier_limit(7, GUILD, "default", "burst", -3), "burst: -3 is out of range; allowed range is 1 to"),
        (lambda s: s.set_tier_limit(7, GUILD, "default", "daily_images", 10**12), "allowed range is 0 to 1,000,000"),
        (lambda s: s.set_tier_limit(7, GUILD, "gold", "burst", 3), "There is no tier 'gold'"),
        (lambda s: s.set_member_override(7, GUILD, 1, "weight", 0), "weight: 0 is out of range; allowed range is 0.01"),
        (lambda s: s.set_multiplier(7, 1000), "multiplier: 1,000 is out of range"),
        (lambda s: s.ban(7, GUILD, 1, until=0), "until: must be a time in the future"),
    ],
)
async def test_bad_admin_input_is_refused_with_the_allowed_range(harness: Harness, call, message: str) -> None:
    with pytest.raises(DreamError, match=message):
        await call(harness.service)
    assert await harness.service.audit_log(GUILD) == []  # nothing was changed, so nothing was audited


async def test_a_flooder_delays_a_newcomer_by_at_most_the_running_batch(harness: Harness) -> None:
    await harness.service.pause(9)
    flood = [await harness.submit(1, images=1) for _ in range(20)]
    await harness.service.resume(9)
    resumed = harness.clock.now()
    await harness.clock.advance(0.5)  # the flooder's first batch (8 images x 10 steps x 0.1 s) is running
    newcomer = await harness.submit(2, images=1, width=768, height=768)  # cannot share the flooder's batches
    assert newcomer.placement.position == 1
    await harness.drain()
    harness.collect()
    starts = {e.job_id: e.at for e in harness.events if e.kind is EventKind.STARTED}
    assert starts[newcomer.job.job_id] == pytest.approx(resumed + 8.0)
    assert all(starts[a.job.job_id] > starts[newcomer.job.job_id] for a in flood[8:])


async def test_stored_changes_that_no_longer_fit_are_skipped(harness: Harness) -> None:
    await harness.service.set_tier_limit(7, GUILD, "default", "burst", 5)
    await harness.service.set_member_override(7, GUILD, 1, "max_queued", 2)
    await harness.stop()
    with sqlite3.connect(harness.path) as raw:
        raw.execute("INSERT INTO tier_limits VALUES (1, 'gone', 'burst', 3), (1, 'default', 'colour', 1)")
        raw.execute("UPDATE member_overrides SET value = -4")
        raw.execute("UPDATE quota_state SET charges = 'garbage'")
    await harness.start()
    assert harness.service.tier_limits(GUILD, "default")["burst"] == 5
    assert harness.service.quota_status(GUILD, Member(1)).limits.max_queued == GENEROUS.max_queued
    await harness.submit(1)


async def test_a_batch_start_tells_the_first_places_every_move_and_the_rest_a_tenth_at_a_time(
    tmp_path: Path, clock: VirtualClock
) -> None:
    harness = Harness(tmp_path / "dq.db", clock, *settings(), max_batch_images=1)
    await harness.start()
    await harness.service.pause(actor_id=9)
    jobs = [(await harness.submit(member)).job.job_id for member in range(1, 31)]
    harness.collect()
    await harness.service.resume(actor_id=9)
    await clock.settle()  # the first job starts: everyone else moves up one place

    def told() -> dict[int, int | None]:
        return {event.job_id: event.position for event in harness.collect() if event.kind is EventKind.POSITION}

    assert told() == {job: place for place, job in enumerate(jobs[1:11], start=1)}
    await clock.advance(1.0)
    await clock.advance(1.0)  # the third starts: the last job, told #30 at admission, is now #27
    assert told()[jobs[-1]] == 27
    await harness.stop()
