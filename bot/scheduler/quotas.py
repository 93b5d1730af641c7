"""Per-member per-server quotas: a GCRA bucket (burst + sustained rate) and a daily budget, both in images.

The bucket is a theoretical arrival time (TAT) in integer nanoseconds: a charge
of ``n`` images at ``t`` moves it to ``max(TAT, t) + n * interval``, and a charge
is accepted while ``TAT - now`` stays within ``burst * interval``.

Refunds are exact: a member who cancels ends up exactly as if they had never
made the request. Because a charge can delay the start of the charges after it
(the ``max``), simply subtracting it would give back too much when the bucket
has refilled meanwhile. So the charges of jobs that may still be refunded are
kept, in order, on top of a settled ``base`` TAT, and the TAT is replayed from
them; a job that completes is folded into the base once the charges before it
have settled too. A member has at most a few such jobs (their queue cap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bot.scheduler.errors import QuotaExceeded
from bot.scheduler.models import EffectiveLimits

Who = tuple[int, int]
"""A member in a server: (guild id, member id). Quotas are kept for each server separately."""

NS = 1_000_000_000
DAY_SECONDS = 86_400


def _ns(seconds: float) -> int:
    return int(seconds * NS)


def _interval_ns(limits: EffectiveLimits) -> int:
    """Nanoseconds for the bucket to refill one image."""
    return max(1, round(3600 * NS / limits.rate_per_hour))


@dataclass
class Charge:
    """One admitted job's charge: when, how much bucket time and how many images, and whether it is final."""

    job_id: int
    at_ns: int
    cost_ns: int
    images: int
    settled: bool = False


@dataclass
class QuotaState:
    """One member's quota bookkeeping (persisted in ``quota_state``)."""

    base_tat_ns: int = 0
    charges: list[Charge] = field(default_factory=list)
    day: int = 0
    day_images: int = 0

    def tat_ns(self) -> int:
        tat = self.base_tat_ns
        for charge in self.charges:
            tat = max(tat, charge.at_ns) + charge.cost_ns
        return tat

    def fold_settled(self) -> None:
        """Fold the settled charges at the front into the base: they can no longer change."""
        while self.charges and self.charges[0].settled:
            charge = self.charges.pop(0)
            self.base_tat_ns = max(self.base_tat_ns, charge.at_ns) + charge.cost_ns


@dataclass(frozen=True)
class Allowance:
    """What is left of a member's quota at one instant (times in unix seconds)."""

    burst_left: int
    next_image_at: float | None
    burst_full_at: float | None
    daily_left: int
    daily_resets_at: float


def images_charged(count: int, strength: float = 1.0, scale: float = 1.0) -> int:
    """Images a job takes from the quota: one an image from noise; from a start image, its real GPU work against
    as many new images of the start image's size (``strength`` of the steps run, ``scale`` times the pixels:
    4 for a 2x upscale), rounded up, at least 1."""
    # The small slack keeps float noise (0.35 * 4 = 1.4000000000000001) from rounding up a whole image.
    return max(1, math.ceil(count * strength * scale - 1e-9))


class QuotaBook:
    """Every member's quota state, charged, settled and refunded in memory (the caller persists ``state``)."""

    def __init__(self, daily_reset_hour_utc: int = 0) -> None:
        self._offset = daily_reset_hour_utc * 3600
        self._states: dict[Who, QuotaState] = {}

    def day_of(self, now: float) -> int:
        """The quota day that ``now`` falls in."""
        return math.floor((now - self._offset) / DAY_SECONDS)

    def day_start(self, day: int) -> float:
        return day * DAY_SECONDS + self._offset

    def state(self, who: Who) -> QuotaState:
        return self._states.setdefault(who, QuotaState())

    def load(self, who: Who, state: QuotaState) -> None:
        self._states[who] = state

    def _today(self, who: Who, now: float) -> QuotaState:
        state = self.state(who)
        day = self.day_of(now)
        if state.day != day:
            state.day, state.day_images = day, 0
        return state

    def allowance(self, who: Who, limits: EffectiveLimits, now: float) -> Allowance:
        """What the member has left at ``now`` under ``limits``."""
        state = self._today(who, now)
        interval, now_ns = _interval_ns(limits), _ns(now)
        tat = state.tat_ns()
        debt = max(0, tat - now_ns)
        used = -(-debt // interval)  # ceil: a partly refilled image is not yet available
        return Allowance(
            burst_left=max(0, limits.burst - used),
            next_image_at=(tat - (used - 1) * interval) / NS if used else None,
            burst_full_at=tat / NS if debt else None,
            daily_left=max(0, limits.daily_images - state.day_images),
            daily_resets_at=self.day_start(state.day + 1),
        )

    def charge(self, who: Who, job_id: int, images: int, limits: EffectiveLimits, now: float) -> None:
        """Charge ``images`` for ``job_id`` to the bucket and the daily budget, or raise :class:`QuotaExceeded`.

        When both limits refuse, the error names the one that clears last, since
        that is when the request would really go through.
        """
        state = self._today(who, now)
        interval, now_ns = _interval_ns(limits), _ns(now)
        start = max(state.tat_ns(), now_ns)
        refusals: list[QuotaExceeded] = []
        if start + images * interval - now_ns > limits.burst * interval:
            retry_at = (start + images * interval - limits.burst * interval) / NS
            refusals.append(QuotaExceeded(
                "burst", retry_at, now,
                f"You can make {limits.burst} images in a burst, refilling at {limits.rate_per_hour:g} an hour, "
                "and have used them.",
            ))
        if state.day_images + images > limits.daily_images:
            left = max(0, limits.daily_images - state.day_images)
            refusals.append(QuotaExceeded(
                "daily", self.day_start(state.day + 1), now,
                f"You have {left} of your {limits.daily_images} images for today left.",
            ))
        if refusals:
            raise max(refusals, key=lambda error: error.reset_at)
        state.charges.append(Charge(job_id, now_ns, images * interval, images))
        state.day_images += images

    def refund(self, who: Who, job_id: int, now: float) -> None:
        """Undo ``job_id``'s charge (its daily part only if it was charged today); nothing if it is unknown."""
        state = self._today(who, now)
        charge = next((charge for charge in state.charges if charge.job_id == job_id), None)
        if charge is None:
            return
        state.charges.remove(charge)
        if self.day_of(charge.at_ns / NS) == state.day:
            state.day_images -= charge.images

    def settle(self, who: Who, job_id: int) -> None:
        """Make ``job_id``'s charge final (the job is done)."""
        state = self.state(who)
        for charge in state.charges:
            if charge.job_id == job_id:
                charge.settled = True
        state.fold_settled()

    def reconcile(self, active_job_ids: set[int]) -> None:
        """After a restart: a charge whose job is no longer queued or running is final.

        Normally there is none (charges change in the same transaction as their
        job); one can be left by an admission whose commit failed just before a
        crash, and keeping it charged is the safe side.
        """
        for state in self._states.values():
            for charge in state.charges:
                charge.settled = charge.settled or charge.job_id not in active_job_ids
            state.fold_settled()
