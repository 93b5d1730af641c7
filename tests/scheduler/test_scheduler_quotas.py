"""Quota arithmetic: GCRA burst and rate, the daily budget, exact refunds, and the limits never exceeded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduler.errors import QuotaExceeded
from bot.scheduler.models import EffectiveLimits
from bot.scheduler.quotas import DAY_SECONDS, QuotaBook, images_charged

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def limits(burst: int = 4, rate_per_hour: float = 60.0, daily_images: int = 100) -> EffectiveLimits:
    return EffectiveLimits(
        tier="t", burst=burst, rate_per_hour=rate_per_hour, daily_images=daily_images, max_images=4, max_queued=3,
        max_steps=50, max_pixels=512 * 512, weight=1.0,
    )


def test_burst_then_sustained_rate() -> None:
    book, lim = QuotaBook(), limits(burst=4, rate_per_hour=60)  # one image a minute
    book.charge(1, 1, 4, lim, T0)
    with pytest.raises(QuotaExceeded) as caught:
        book.charge(1, 2, 1, lim, T0)
    assert caught.value.limit == "burst"
    assert caught.value.reset_at == pytest.approx(T0 + 60)
    assert "again in 60 seconds" in str(caught.value)
    book.charge(1, 2, 1, lim, T0 + 60)
    allowance = book.allowance(1, lim, T0 + 60)
    assert allowance.burst_left == 0
    assert allowance.next_image_at == pytest.approx(T0 + 120)
    assert allowance.burst_full_at == pytest.approx(T0 + 300)
    assert book.allowance(1, lim, T0 + 300).burst_left == 4


def test_daily_budget_resets_at_the_configured_hour() -> None:
    book, lim = QuotaBook(daily_reset_hour_utc=6), limits(burst=10, rate_per_hour=10_000, daily_images=5)
    book.charge(1, 1, 5, lim, T0)
    with pytest.raises(QuotaExceeded) as caught:
        book.charge(1, 2, 1, lim, T0 + 10)
    assert caught.value.limit == "daily"
    reset = caught.value.reset_at
    assert (reset - 6 * 3600) % DAY_SECONDS == 0 and T0 < reset <= T0 + DAY_SECONDS
    assert "0 of your 5 images for today" in str(caught.value)
    book.charge(1, 2, 5, lim, reset)


def test_refusal_names_the_limit_that_clears_last() -> None:
    book, lim = QuotaBook(), limits(burst=2, rate_per_hour=1, daily_images=2)
    book.charge(1, 1, 2, lim, T0)
    with pytest.raises(QuotaExceeded) as caught:
        book.charge(1, 2, 2, lim, T0)
    # Burst refills in 2 hours; the daily budget resets at the next midnight UTC, under 2 hours away.
    assert caught.value.limit == "burst"


def test_refund_restores_exactly() -> None:
    book, lim = QuotaBook(), limits(burst=4, rate_per_hour=7, daily_images=9)  # 7/h: a non-integer interval in seconds
    book.charge(1, 1, 3, lim, T0)
    before = book.allowance(1, lim, T0 + 1)
    book.charge(1, 2, 1, lim, T0 + 1)
    book.refund(1, 2, T0 + 1)
    assert book.allowance(1, lim, T0 + 1) == before


def test_refunding_an_old_charge_gives_back_only_what_it_still_costs() -> None:
    book, lim = QuotaBook(), limits(burst=4, rate_per_hour=60)
    book.charge(1, 1, 4, lim, T0)  # empty bucket
    book.charge(1, 2, 4, lim, T0 + 240)  # refilled after 4 minutes, emptied again
    book.refund(1, 1, T0 + 240)  # the first request's cost had already been paid back by the refill
    assert book.allowance(1, lim, T0 + 240).burst_left == 0
    with pytest.raises(QuotaExceeded):
        book.charge(1, 3, 1, lim, T0 + 240)


def test_settled_charges_stay_charged() -> None:
    book, lim = QuotaBook(), limits(burst=4, rate_per_hour=60)
    book.charge(1, 1, 2, lim, T0)
    book.charge(1, 2, 2, lim, T0)
    book.settle(1, 2)  # done out of order: kept until the charge before it settles
    assert [charge.job_id for charge in book.state(1).charges] == [1, 2]
    book.settle(1, 1)
    assert book.state(1).charges == []
    book.refund(1, 1, T0)  # unknown by now: no effect
    assert book.allowance(1, lim, T0).burst_left == 0


def test_yesterdays_refund_does_not_touch_todays_budget() -> None:
    book, lim = QuotaBook(), limits(burst=100, rate_per_hour=100_000, daily_images=10)
    book.charge(1, 1, 4, lim, T0)
    tomorrow = book.day_start(book.day_of(T0) + 1) + 1
    book.charge(1, 2, 10, lim, tomorrow)
    book.refund(1, 1, tomorrow)
    assert book.allowance(1, lim, tomorrow).daily_left == 0


def test_reconcile_after_restart_keeps_orphan_charges() -> None:
    book, lim = QuotaBook(), limits(burst=4, rate_per_hour=60)
    book.charge(1, 1, 4, lim, T0)
    book.charge(1, 2, 0 + 1, lim, T0 + 60)
    book.reconcile(active_job_ids={2})
    assert [charge.job_id for charge in book.state(1).charges] == [2]
    book.refund(1, 2, T0 + 60)
    assert book.allowance(1, lim, T0 + 60).burst_left == 1


operations = st.lists(
    st.tuples(
        st.sampled_from(["charge", "refund"]),
        st.integers(1, 4),  # images
        st.floats(0, 400, allow_nan=False),  # seconds before this operation
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations, st.integers(1, 8), st.sampled_from([7.0, 60.0, 90.0, 3600.0]), st.integers(0, 30))
def test_quotas_are_never_exceeded_and_refunds_are_exact(
    ops: list[tuple[str, int, float]], burst: int, rate: float, daily: int
) -> None:
    """Over every window, images charged and not refunded stay within burst + rate x window and the daily budget;
    and after any refund the member is exactly where the same history without that request would leave them."""
    book, lim = QuotaBook(), limits(burst=burst, rate_per_hour=rate, daily_images=daily)
    now = T0
    charges: dict[int, tuple[float, int]] = {}
    for job_id, (op, images, gap) in enumerate(ops):
        now += gap
        if op == "charge":
            try:
                book.charge(1, job_id, images, lim, now)
            except QuotaExceeded as refusal:
                assert refusal.reset_at > now
                continue
            charges[job_id] = (now, images)
        elif charges:
            refunded = sorted(charges)[images % len(charges)]
            del charges[refunded]
            book.refund(1, refunded, now)
        twin = QuotaBook()
        for twin_id, (at, n) in sorted(charges.items()):
            twin.charge(1, twin_id, n, lim, at)  # never raises: a subset of an accepted history is acceptable
        assert book.allowance(1, lim, now) == twin.allowance(1, lim, now)
    kept = sorted(charges.values())
    for i, (start, _) in enumerate(kept):
        for end, _ in kept[i:]:
            window = sum(n for at, n in kept if start <= at <= end)
            assert window <= burst + rate * (end - start) / 3600 + 1e-6
    for day in {book.day_of(at) for at, _ in kept}:
        assert sum(n for at, n in kept if book.day_of(at) == day) <= daily


@pytest.mark.parametrize(("count", "strength", "scale", "charged"), [
    (4, 1.0, 1, 4),  # from noise: one an image
    (4, 0.35, 1, 2),  # a subtle variation: 1.4 images' work
    (4, 0.7, 1, 3),
    (1, 0.3, 4, 2),  # an upscale: 4x the pixels at 0.3 of the steps, 1.2 images' work
    (2, 0.5, 1, 1),  # exactly one image's work: no float noise rounds it up
    (1, 0.01, 1, 1),  # never free
])  # fmt: skip
def test_a_job_from_a_start_image_is_charged_its_gpu_work_in_images(
    count: int, strength: float, scale: int, charged: int
) -> None:
    assert images_charged(count, strength, scale) == charged
