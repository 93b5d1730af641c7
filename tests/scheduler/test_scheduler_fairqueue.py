"""The fair queue: a flooder cannot delay a newcomer by more than the running batch, backlogged members get
GPU cost in proportion to their weights, and compatible heads share a batch without breaking that."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduler.fairqueue import FairQueue, QueuedJob
from engine.types import GenerationParams

SMALL = GenerationParams(width=512, height=512, steps=20)
LARGE = GenerationParams(width=768, height=768, steps=30)


class Jobs:
    """Makes queued jobs with increasing ids and their real cost."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def __call__(self, member: int, images: int = 1, params: GenerationParams = SMALL, guild: int = 1) -> QueuedJob:
        cost = images * params.steps * (params.width * params.height // 4096)
        return QueuedJob(next(self._ids), guild, member, cost, images, params)


def assert_within(history: list[dict[int, float]], weight: dict[int, float], largest: dict[int, int],
                  slack: float) -> None:  # fmt: skip
    """Between any two moments of ``history`` (each member's served cost / weight), any two members' service
    differs by at most their largest jobs plus ``slack``."""
    for start, end in itertools.combinations(history, 2):
        for a, b in itertools.combinations(weight, 2):
            gap = abs((end[a] - start[a]) - (end[b] - start[b]))
            assert gap <= largest[a] / weight[a] + largest[b] / weight[b] + slack + 1e-6


def test_turns_follow_gpu_cost_not_job_count() -> None:
    queue, make = FairQueue(), Jobs()
    a = [make(1, params=LARGE) for _ in range(3)]  # 4,320 cost units each
    b = [make(2, params=SMALL) for _ in range(3)]  # 1,280 each
    for job in a + b:
        queue.push(job, weight=1.0)
    order = [job.job_id for _ in range(6) for job in queue.pick(max_images=1)]
    assert order == [a[0].job_id, b[0].job_id, b[1].job_id, b[2].job_id, a[1].job_id, a[2].job_id]


def test_a_batch_fills_with_compatible_jobs_in_fair_order() -> None:
    queue, make = FairQueue(), Jobs()
    a = [make(1, params=LARGE) for _ in range(3)]
    b = [make(2, params=SMALL) for _ in range(3)]
    c = [make(3, params=LARGE) for _ in range(2)]
    for job in a + b + c:
        queue.push(job, weight=1.0)
    first = queue.pick(max_images=4)
    # Led by a's first job; b's head is passed over (incompatible), so LARGE jobs may join only within one batch
    # of b's tag: c's head, then a's next. b leads the next batch.
    assert [job.job_id for job in first] == [a[0].job_id, c[0].job_id, a[1].job_id, c[1].job_id]
    assert [job.job_id for job in queue.pick(max_images=4)] == [job.job_id for job in b]


def test_newcomer_goes_right_after_the_running_batch() -> None:
    queue, make = FairQueue(), Jobs()
    for _ in range(20):
        queue.push(make(1, images=4), weight=1.0)
    running = queue.pick(max_images=8)
    assert len(running) == 2
    newcomer = make(2, images=1, params=LARGE)  # not even compatible with the flooder's jobs
    queue.push(newcomer, weight=1.0)
    assert queue.position(newcomer.job_id) == 0
    assert queue.pick(max_images=8) == [newcomer]


def test_compatible_newcomer_shares_the_next_batch() -> None:
    queue, make = FairQueue(), Jobs()
    for _ in range(20):
        queue.push(make(1, images=2), weight=1.0)
    queue.pick(max_images=8)
    newcomer = make(2, images=2)
    queue.push(newcomer, weight=1.0)
    batch = queue.pick(max_images=8)
    assert batch[0] is newcomer
    assert sum(job.images for job in batch) == 8


def test_weights_share_gpu_cost() -> None:
    queue, make = FairQueue(), Jobs()
    served = {1: 0, 2: 0}
    for _ in range(400):
        for member, weight in ((1, 1.0), (2, 3.0)):
            if queue.queued_by(1, member) < 3:
                queue.push(make(member, params=LARGE), weight=weight)
        for job in queue.pick(max_images=1):
            served[job.member_id] += job.cost
    assert 2.9 < served[2] / served[1] < 3.1


def test_cancel_and_requeue_keep_the_member_order() -> None:
    queue, make = FairQueue(), Jobs()
    first, second, third = make(1), make(1), make(1)
    for job in (first, second, third):
        queue.push(job, weight=1.0)
    assert queue.remove(second.job_id) is second
    assert queue.remove(second.job_id) is None
    (taken,) = queue.pick(max_images=1)
    assert taken is first
    queue.push(first, weight=1.0, front=True)  # the engine crashed: back at the head
    assert [job.job_id for job in queue.ordered()] == [first.job_id, third.job_id]
    assert len(queue) == 2 and queue.total_images == 2


job_shapes = st.tuples(st.integers(1, 4), st.sampled_from([SMALL, LARGE]))


@settings(max_examples=200, deadline=None)
@given(
    flood=st.lists(job_shapes, min_size=1, max_size=20),
    others=st.lists(st.lists(job_shapes, min_size=1, max_size=5), max_size=3),
    served_before=st.integers(0, 5),
    newcomer=job_shapes,
    max_images=st.sampled_from([4, 8]),
)
def test_a_flooder_delays_a_newcomer_by_at_most_one_batch(
    flood: list, others: list, served_before: int, newcomer: tuple, max_images: int
) -> None:
    """Whatever is queued, a newcomer's first job leads or joins one of the next (members already waiting) + 1
    batches, and the flooder's work dispatched ahead of it is at most one batch plus one of its jobs."""
    queue, make = FairQueue(), Jobs()
    for images, params in flood:
        queue.push(make(1, images, params), weight=1.0)
    for member, jobs in enumerate(others, start=10):
        for images, params in jobs:
            queue.push(make(member, images, params), weight=1.0)
    for _ in range(served_before):
        queue.pick(max_images)
    waiting = {job.member_id for job in queue.ordered()}
    job = make(2, *newcomer)
    queue.push(job, weight=1.0)
    batches_before = flooder_cost = 0
    while job not in (batch := queue.pick(max_images)):
        batches_before += 1
        flooder_cost += sum(j.cost for j in batch if j.member_id == 1)
    per_image = max(p.steps * (p.width * p.height // 4096) for _, p in flood)
    assert batches_before <= len(waiting)
    assert flooder_cost <= max_images * per_image + max(Jobs()(1, *shape).cost for shape in flood)


@settings(max_examples=150, deadline=None)
@given(
    members=st.lists(
        st.tuples(st.sampled_from([0.5, 1.0, 2.0]), st.lists(job_shapes, min_size=1, max_size=4)),
        min_size=2, max_size=5,
    ),
    light=st.lists(job_shapes, max_size=3),
    picks=st.integers(5, 40),
    max_images=st.sampled_from([1, 4, 8]),
)
def test_backlogged_members_stay_within_one_job_and_one_batch_of_each_other(
    members: list, light: list, picks: int, max_images: int
) -> None:
    """Start-time fair queuing's bound, widened by batching: while two members are both backlogged, the GPU cost
    each receives divided by its weight differs by at most one of each's largest jobs (in its own virtual time)
    plus one full batch (of the largest per-image cost, at the smallest weight) for each of them, since either
    may have been a batch ahead at the start of the interval and the other at its end.

    Light members, who only ever have one job waiting, lead small batches that others may fill; the bound must
    hold between the backlogged members all the same."""
    queue, make = FairQueue(), Jobs()
    # Backlogged members stay backlogged even through the filling of a batch: each cycles through its job shapes,
    # topping its queue up to more jobs than a batch can take.
    shapes = {member: itertools.cycle(jobs) for member, (_, jobs) in enumerate(members)}
    weight = {member: w for member, (w, _) in enumerate(members)}
    largest = {member: max(images * p.steps * (p.width * p.height // 4096) for images, p in jobs)
               for member, (_, jobs) in enumerate(members)}
    per_image = max(p.steps * (p.width * p.height // 4096) for _, jobs in members for _, p in jobs)
    slack = max_images * per_image / min(weight.values())
    served = {member: 0.0 for member in weight}
    history = []
    for _ in range(picks):
        for member, member_weight in weight.items():
            while queue.queued_by(1, member) <= max_images:
                queue.push(make(member, *next(shapes[member])), weight=member_weight)
        for member, shape in enumerate(light, start=100):
            if not queue.queued_by(1, member):
                queue.push(make(member, *shape), weight=1.0)
        for job in queue.pick(max_images):
            if job.member_id in served:
                served[job.member_id] += job.cost / weight[job.member_id]
        history.append(dict(served))
    assert_within(history, weight, largest, 2 * slack)
