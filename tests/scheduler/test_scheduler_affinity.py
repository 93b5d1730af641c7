"""Model affinity in the fair queue: an engine keeps its loaded model's jobs leading while the fairer job of another
model stays within one swap's cost of its share, so members on two models do not make it swap at every batch;
nobody is starved, and with one model the order is exactly the fairest-first order."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduler.clock import VirtualClock
from bot.scheduler.events import EventKind
from bot.scheduler.fairqueue import FairQueue, QueuedJob
from bot.scheduler.serverqueue import OTHER_MODEL_PASSES
from bot.settings import ConfigError, parse_settings
from tests.scheduler.harness import Harness
from tests.scheduler.harness import settings as harness_settings
from tests.scheduler.test_scheduler_fairqueue import LARGE, SMALL, Jobs, assert_within, job_shapes

ON_A, ON_B = replace(SMALL, model="a"), replace(SMALL, model="b")
COST = Jobs()(1).cost
"""One SMALL image's GPU cost."""


def serve(queue: FairQueue, loaded: str, max_images: int, switch_cost: float) -> tuple[list[QueuedJob], str]:
    """One batch for an engine with ``loaded`` in memory, and the model it has loaded after running it."""
    batch = queue.pick(max_images, loaded, switch_cost)
    return batch, batch[0].params.model if batch else loaded


def switches(models: list[str]) -> int:
    return sum(1 for before, after in itertools.pairwise(models) if before != after)


def two_backlogged_members(switch_cost: float, batches: int = 200, max_images: int = 4) -> tuple[int, float]:
    """Members 1 (model a) and 2 (model b), equal weights, always backlogged: the model switches over ``batches``
    batches, and the largest gap in GPU cost received over any stretch of them."""
    queue, make = FairQueue(), Jobs()
    served, history, models, loaded = {1: 0, 2: 0}, [], [], ""
    for _ in range(batches):
        for member, params in ((1, ON_A), (2, ON_B)):
            while queue.queued_by(1, member) <= max_images:
                queue.push(make(member, params=params), weight=1.0)
        batch, loaded = serve(queue, loaded, max_images, switch_cost)
        models.append(loaded)
        for job in batch:
            served[job.member_id] += job.cost
        history.append(served[1] - served[2])
    return switches(models), max(history) - min(history)


def test_two_members_on_two_models_swap_far_less_than_every_batch_and_stay_fair() -> None:
    one_batch = 4 * COST
    swap = 5 * one_batch
    assert two_backlogged_members(switch_cost=0) == (199, one_batch)  # fairest first: a swap at every batch
    swapped, gap = two_backlogged_members(switch_cost=swap)
    # Runs of about two swaps' worth (10 batches) each: 200 batches, about 20 swaps.
    assert 10 <= swapped <= 25
    # Nothing starts with a tag beyond the other member's plus one swap: either runs ahead of the other by at most
    # one swap and one job, so over any stretch the two receive GPU cost within twice that of each other.
    assert gap <= 2 * (swap + COST)


def test_a_newcomer_on_another_model_waits_at_most_about_one_swap() -> None:
    queue, make = FairQueue(), Jobs()
    one_batch = 4 * COST
    swap = 5 * one_batch
    for _ in range(60):
        queue.push(make(1, params=ON_A), weight=1.0)
    queue.pick(4, "a", swap)  # running when the newcomer arrives
    newcomer = make(2, params=ON_B, guild=2)  # another server
    queue.push(newcomer, weight=1.0)
    flooder_batches = []
    while newcomer not in (batch := queue.pick(4, "a", swap)):
        flooder_batches.append(sum(job.cost for job in batch))
    # The engine kept model a while the flooder's tags stayed within one swap of the newcomer's (the running batch
    # had already taken it one batch ahead), in full batches, then swapped for the newcomer.
    assert sum(flooder_batches) == swap - one_batch + COST
    assert flooder_batches == [one_batch] * 4 + [COST]
    assert batch == [newcomer]


def test_past_the_bound_the_fairest_job_leads_and_the_engine_swaps() -> None:
    queue, make = FairQueue(), Jobs()
    ahead = make(1, params=ON_A)
    behind = make(2, params=ON_B)
    queue.push(behind, weight=1.0)
    queue.push(ahead, weight=1.0)
    assert queue.pick(1, "a", switch_cost=COST) == [ahead]  # b is one job fairer: within one job's cost, a leads
    queue, make = FairQueue(), Jobs()
    queue.push(make(2, params=ON_B), weight=1.0)
    queue.push(make(2, params=ON_B), weight=1.0)
    queue.push(make(1, params=ON_A), weight=1.0)
    queue.pick(1)  # b's first: member 2 is now one job ahead
    queue.push(make(3, params=ON_B), weight=1.0)  # a newcomer at the virtual time: level with member 1
    assert [job.member_id for job in queue.pick(1, "b", switch_cost=COST / 2)] == [3]
    assert [job.member_id for job in queue.pick(1, "b", switch_cost=COST / 2)] == [1]  # member 2 is too far ahead


def test_a_pick_looks_past_a_bounded_number_of_heads_on_other_models() -> None:
    """Past :data:`OTHER_MODEL_PASSES` heads on other models, walking on would cost more than a swap: the fairest
    leads; with fewer ahead, the loaded model's job does."""
    for others, leader in ((OTHER_MODEL_PASSES - 1, "a"), (OTHER_MODEL_PASSES, "b")):
        queue, make = FairQueue(), Jobs()
        for member in range(others):
            queue.push(make(member, params=ON_B), weight=1.0)
        queue.push(make(1000, params=ON_A), weight=1.0)
        assert queue.pick(1, "a", switch_cost=1e12)[0].params.model == leader


pushes = st.tuples(st.just("push"), st.integers(1, 5), job_shapes, st.integers(1, 3))
picks = st.tuples(st.just("pick"), st.sampled_from([1, 4, 8]))
cancels = st.tuples(st.just("cancel"), st.integers(1, 80))


@settings(max_examples=150, deadline=None)
@given(
    operations=st.lists(st.one_of(pushes, picks, cancels), max_size=60),
    loaded=st.sampled_from(["", "xl"]),
    switch_cost=st.sampled_from([COST, 100 * COST, 1e12]),
)
def test_with_one_model_the_pick_order_is_exactly_the_fairest_first(
    operations: list[tuple], loaded: str, switch_cost: float
) -> None:
    """With every job on one model, an engine with that model (or another one) loaded gets exactly the batches the
    queue gives with no model in mind, through pushes, cancels and picks of any size, at any swap cost."""
    weight = {1: 1.0, 2: 2.0, 3: 0.5, 4: 1.0, 5: 0.1}
    plain, preferring = FairQueue(), FairQueue()
    make_plain, make_preferring = Jobs(), Jobs()
    for operation in operations:
        if operation[0] == "push":
            _, member, (images, params), guild = operation
            plain.push(make_plain(member, images, params, guild), weight[member], server_weight=guild)
            preferring.push(make_preferring(member, images, params, guild), weight[member], server_weight=guild)
        elif operation[0] == "pick":
            expected = [job.job_id for job in plain.pick(operation[1])]
            assert [job.job_id for job in preferring.pick(operation[1], loaded, switch_cost)] == expected
        else:
            assert (plain.remove(operation[1]) is None) == (preferring.remove(operation[1]) is None)
    assert [job.job_id for job in preferring.ordered()] == [job.job_id for job in plain.ordered()]


@settings(max_examples=150, deadline=None)
@given(
    members=st.lists(
        st.tuples(st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from(["", "xl"]),
                  st.lists(job_shapes, min_size=1, max_size=4)),
        min_size=2, max_size=4,
    ),
    light=st.lists(st.tuples(st.sampled_from(["", "xl"]), job_shapes), max_size=3),
    picks=st.integers(5, 40),
    max_images=st.sampled_from([1, 4, 8]),
    swaps=st.sampled_from([0, 1, 5]),
)
def test_backlogged_members_on_several_models_stay_within_one_swap_of_each_other(
    members: list, light: list, picks: int, max_images: int, swaps: int
) -> None:
    """The fairness bound of the single-model queue (one job and one batch each), widened by one swap's cost (in
    the smaller weight's virtual time) each way, while the engine follows the model of every batch it runs."""
    queue, make = FairQueue(), Jobs()
    shapes = {member: itertools.cycle(jobs) for member, (_, _, jobs) in enumerate(members)}
    weight = {member: w for member, (w, _, _) in enumerate(members)}
    model = {member: m for member, (_, m, _) in enumerate(members)}
    largest = {member: max(images * p.steps * (p.width * p.height // 4096) for images, p in jobs)
               for member, (_, _, jobs) in enumerate(members)}
    per_image = max(p.steps * (p.width * p.height // 4096) for _, _, jobs in members for _, p in jobs)
    slack = max_images * per_image / min(weight.values())
    swap = swaps * max_images * LARGE.steps * (LARGE.width * LARGE.height // 4096)
    widening = swap / min(weight.values())
    served = {member: 0.0 for member in weight}
    history, loaded = [], ""
    for _ in range(picks):
        for member, member_weight in weight.items():
            while queue.queued_by(1, member) <= max_images:
                images, params = next(shapes[member])
                queue.push(make(member, images, replace(params, model=model[member])), weight=member_weight)
        for member, (light_model, (images, params)) in enumerate(light, start=100):
            if not queue.queued_by(1, member):
                queue.push(make(member, images, replace(params, model=light_model)), weight=1.0)
        batch, loaded = serve(queue, loaded, max_images, swap)
        for job in batch:
            if job.member_id in served:
                served[job.member_id] += job.cost / weight[job.member_id]
        history.append(dict(served))
    assert_within(history, weight, largest, 2 * slack + 2 * widening)


async def test_the_service_keeps_the_loaded_model_hot_between_members_on_two_models(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Through the dispatcher: two members' twelve jobs each on models a and b run in a few long runs per model
    (a swap is 10 s, ten of these one-second jobs), where fairest-first swaps at every batch."""
    started_models = []
    for swap_s in (0.0, 10.0):
        scheduler, quotas = harness_settings()
        harness = Harness(tmp_path / f"swap-{swap_s}.db", clock, scheduler.model_copy(
            update={"model_switch_cost_s": swap_s}), quotas, max_batch_images=2, models=("a", "b"))
        service = await harness.start()
        await service.pause(9)
        jobs = {}
        for _ in range(12):
            for member, model in ((1, "a"), (2, "b")):
                admission = await harness.submit(member, model=model)
                jobs[admission.job.job_id] = model
        await service.resume(9)
        await harness.drain()
        harness.collect()
        started_models.append([jobs[event.job_id] for event in harness.events if event.kind is EventKind.STARTED])
        await harness.stop()
    fairest_first, kept_hot = started_models
    assert sorted(fairest_first) == sorted(kept_hot) == ["a"] * 12 + ["b"] * 12
    assert switches(fairest_first) >= 10
    assert switches(kept_hot) <= 3


@pytest.mark.parametrize("value", [-1, 601, "slow", float("nan")])
def test_a_bad_model_switch_cost_fails_at_start_naming_the_key(value: object) -> None:
    with pytest.raises(ConfigError, match=r"scheduler\.model_switch_cost_s"):
        parse_settings({"scheduler": {"model_switch_cost_s": value}}, env={})
    assert parse_settings({"scheduler": {"model_switch_cost_s": 0}}, env={}).scheduler.model_switch_cost_s == 0
