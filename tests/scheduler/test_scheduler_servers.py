"""The two-level fair queue: servers share GPU cost by their weights whatever their number of members, a
flooding server cannot delay a small server's first job by more than about one batch, and batches still mix
compatible jobs from different servers."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduler.fairqueue import FairQueue
from tests.scheduler.test_scheduler_fairqueue import LARGE, SMALL, Jobs, job_shapes

BIG, SMALL_SERVER, OTHER = 1, 2, 3


def serve(queue: FairQueue, make: Jobs, backlog: dict[int, tuple[list[int], float]], picks: int,
          max_images: int) -> dict[int, float]:  # fmt: skip
    """Keep every listed member of every server backlogged; return each server's GPU cost over ``picks``."""
    served = dict.fromkeys(backlog, 0.0)
    for _ in range(picks):
        for guild, (members, server_weight) in backlog.items():
            for member in members:
                while queue.queued_by(guild, member) < 2:
                    queue.push(make(member, 2, guild=guild), weight=1.0, server_weight=server_weight)
        for job in queue.pick(max_images):
            served[job.guild_id] += job.cost
    return served


def test_servers_share_equally_whatever_their_number_of_members() -> None:
    queue, make = FairQueue(), Jobs()
    served = serve(queue, make, {BIG: (list(range(500)), 1.0), SMALL_SERVER: ([1], 1.0), OTHER: ([1, 2], 1.0)},
                   picks=300, max_images=4)
    assert max(served.values()) / min(served.values()) < 1.05


def test_server_weights_set_the_shares() -> None:
    queue, make = FairQueue(), Jobs()
    served = serve(queue, make, {BIG: (list(range(50)), 2.0), SMALL_SERVER: ([1], 1.0)}, picks=300, max_images=1)
    assert 1.95 < served[BIG] / served[SMALL_SERVER] < 2.05


def test_inside_a_server_members_share_by_tier_weight() -> None:
    queue, make = FairQueue(), Jobs()
    served = {1: 0, 2: 0}
    for _ in range(400):
        for member, weight in ((1, 1.0), (2, 3.0)):
            if queue.queued_by(SMALL_SERVER, member) < 3:
                queue.push(make(member, params=LARGE, guild=SMALL_SERVER), weight=weight)
        if not queue.queued_by(BIG, 9):
            queue.push(make(9, params=LARGE, guild=BIG), weight=1.0)
        for job in queue.pick(max_images=1):
            if job.guild_id == SMALL_SERVER:
                served[job.member_id] += job.cost
    assert 2.9 < served[2] / served[1] < 3.1


def test_a_small_servers_first_job_goes_right_after_the_running_batch() -> None:
    queue, make = FairQueue(), Jobs()
    for member in range(500):
        queue.push(make(member, images=4, guild=BIG), weight=1.0)
    assert len(queue.pick(max_images=8)) == 2
    newcomer = make(1, images=1, params=LARGE, guild=SMALL_SERVER)  # not even compatible with the flood
    queue.push(newcomer, weight=1.0)
    assert queue.position(newcomer.job_id) == 0
    assert queue.pick(max_images=8) == [newcomer]


def test_compatible_jobs_of_different_servers_share_a_batch() -> None:
    queue, make = FairQueue(), Jobs()
    jobs = [make(1, 2, guild=guild) for guild in (BIG, SMALL_SERVER, OTHER, BIG)]
    for job in jobs:
        queue.push(job, weight=1.0)
    batch = queue.pick(max_images=8)
    assert {job.guild_id for job in batch} == {BIG, SMALL_SERVER, OTHER} and len(batch) == 4


def test_positions_interleave_servers() -> None:
    queue, make = FairQueue(), Jobs()
    big = [make(member, guild=BIG) for member in range(4)]
    small = [make(1, guild=SMALL_SERVER) for _ in range(4)]
    for job in big + small:
        queue.push(job, weight=1.0)
    ordered = [job.guild_id for job in queue.ordered()]
    assert ordered == [BIG, SMALL_SERVER] * 4
    assert [queue.position(job.job_id) for job in small] == [1, 3, 5, 7]
    picked = [job.guild_id for _ in range(8) for job in queue.pick(max_images=1)]
    assert picked == ordered


def test_requeue_after_an_engine_failure_undoes_the_servers_charge() -> None:
    queue, make = FairQueue(), Jobs()
    for guild in (BIG, SMALL_SERVER):
        for _ in range(3):
            queue.push(make(1, guild=guild), weight=1.0)
    (first,) = queue.pick(max_images=1)
    queue.push(first, weight=1.0, front=True)
    assert queue.ordered()[0] is first
    assert queue.pick(max_images=1) == [first]


@settings(max_examples=150, deadline=None)
@given(
    flood=st.lists(job_shapes, min_size=1, max_size=6),
    flooders=st.integers(1, 40),
    served_before=st.integers(0, 5),
    newcomer=job_shapes,
    max_images=st.sampled_from([4, 8]),
)
def test_a_flooding_server_delays_a_small_servers_first_job_by_at_most_one_batch(
    flood: list, flooders: int, served_before: int, newcomer: tuple, max_images: int
) -> None:
    """However many members a flooding server has, a small server's first job leads or joins the next batch, or
    the one after it when the flood's next batch was already due; the flood's work ahead of it is at most one
    batch plus one job."""
    queue, make = FairQueue(), Jobs()
    shapes = itertools.cycle(flood)
    for member in range(flooders):
        for _ in range(3):
            queue.push(make(member, *next(shapes), guild=BIG), weight=1.0)
    for _ in range(served_before):
        queue.pick(max_images)
    job = make(1, *newcomer, guild=SMALL_SERVER)
    queue.push(job, weight=1.0)
    batches_before = flood_cost = 0
    while job not in (batch := queue.pick(max_images)):
        batches_before += 1
        flood_cost += sum(j.cost for j in batch)
    per_image = max(p.steps * (p.width * p.height // 4096) for _, p in [*flood, newcomer])
    assert batches_before <= 1
    assert flood_cost <= max_images * per_image + max(Jobs()(1, *shape).cost for shape in flood)


def test_small_jobs_keep_their_share_against_a_flood_of_large_ones() -> None:
    queue, make = FairQueue(), Jobs()
    served = {BIG: 0, SMALL_SERVER: 0}
    for _ in range(200):
        for member in range(20):
            if not queue.queued_by(BIG, member):
                queue.push(make(member, 4, LARGE, guild=BIG), weight=1.0)
        if queue.queued_by(SMALL_SERVER, 1) < 2:
            queue.push(make(1, 1, SMALL, guild=SMALL_SERVER), weight=1.0)
        for job in queue.pick(max_images=4):
            served[job.guild_id] += job.cost
    assert 0.9 < served[BIG] / served[SMALL_SERVER] < 1.1
