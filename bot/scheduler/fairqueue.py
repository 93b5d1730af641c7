"""Weighted fair queuing of GPU cost across members: start-time fair queuing with compatible batching.

Each member has a FIFO queue. The job at its head carries a virtual start tag
``S = max(V, F)``: ``V`` is the system's virtual time (the tag of the job that
led the last batch, the smallest waiting then) and ``F`` the virtual finish of
the member's previous job; dispatching a job sets ``F = S + cost / weight``.
The head with the smallest tag leads the next batch. While members stay
backlogged, their GPU cost divided by their weight stays within about one job
(plus one batch, below) of each other's, and a member who arrives with nothing
queued gets ``S = V``: ahead of everything a flooder has waiting, so the
flooder delays them by at most the batch already running.

This is start-time fair queuing (Goyal et al., 1996) rather than deficit round
robin: its bound does not depend on tuning a quantum against job sizes, and
weights and per-job costs of any size come for free.

Batching: after the lead job is taken, other heads with the same generation
parameters join the batch in tag order (a member's next job becomes its head
and may join too). Once a head has been passed over (incompatible, or too many
images), later candidates may only join while their tag is within one full
batch of that head's, so nobody races ahead of a waiting member by more than a
batch. Joining costs the joiner its virtual time like any dispatch, so batching
never buys extra share.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass, field

from engine.types import GenerationParams


@dataclass(eq=False)
class QueuedJob:
    """A job as the fair queue sees it. ``job_id`` orders ties (earlier ids first)."""

    job_id: int
    member_id: int
    cost: int
    images: int
    params: GenerationParams
    start_tag: float = 0.0
    virtual_cost: float = 0.0
    predicted_tag: float = 0.0


@dataclass(eq=False)
class _MemberQueue:
    weight: float
    jobs: deque[QueuedJob] = field(default_factory=deque)
    finish: float = 0.0
    generation: int = 0
    tail_tag: float = 0.0


class FairQueue:
    """Per-member FIFO queues served by start-time fair queuing on GPU cost."""

    def __init__(self) -> None:
        self.virtual_time = 0.0
        self._members: dict[int, _MemberQueue] = {}
        self._jobs: dict[int, QueuedJob] = {}
        self._heads: list[tuple[float, int, int, int]] = []  # (start tag, job id, member id, generation)
        self._order: list[tuple[float, int]] | None = []  # predicted service order; None = rebuild on demand
        self.total_cost = 0
        self.total_images = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._jobs

    def queued_by(self, member_id: int) -> int:
        member = self._members.get(member_id)
        return len(member.jobs) if member else 0

    @property
    def members_waiting(self) -> int:
        return sum(1 for member in self._members.values() if member.jobs)

    def push(self, job: QueuedJob, weight: float, *, front: bool = False) -> None:
        """Queue ``job`` at the back of its member's queue (``front``: back at the head, after an engine failure)."""
        member = self._members.get(job.member_id)
        if member is None:
            member = self._members[job.member_id] = _MemberQueue(weight)
        if member.weight != weight:
            member.weight = weight
            self._order = None
        self._jobs[job.job_id] = job
        self.total_cost += job.cost
        self.total_images += job.images
        if front:
            member.finish -= job.virtual_cost  # undo the charge in virtual time: the engine failed, not the member
            member.jobs.appendleft(job)
            self._arm(member)
            self._order = None
        elif member.jobs:
            member.jobs.append(job)
            self._insert_predicted(member, job)
        else:
            member.jobs.append(job)
            self._arm(member)
            member.tail_tag = job.start_tag
            self._insert_predicted(member, job)

    def remove(self, job_id: int) -> QueuedJob | None:
        """Take a queued job out (cancelled); None if it is not queued."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return None
        member = self._members[job.member_id]
        was_head = member.jobs[0] is job
        member.jobs.remove(job)
        self._forget(job)
        if was_head and member.jobs:
            self._arm(member)
        elif was_head:
            member.generation += 1
        self._order = None
        return job

    def pick(self, max_images: int) -> list[QueuedJob]:
        """Take the next batch: the fairest head, plus compatible heads within one batch of it."""
        lead = self._pop_head()
        if lead is None:
            return []
        batch, images = [lead], lead.images
        one_batch = max_images * lead.virtual_cost / lead.images
        horizon = math.inf  # until someone is passed over, filling the batch delays nobody
        passed_over: list[tuple[float, int, int, int]] = []
        while images < max_images and self._heads:
            entry = self._heads[0]
            if not self._valid(entry):
                heapq.heappop(self._heads)
                continue
            if entry[0] > horizon:
                break
            heapq.heappop(self._heads)
            candidate = self._members[entry[2]].jobs[0]
            if candidate.params == lead.params and images + candidate.images <= max_images:
                self._dispatch(candidate)
                batch.append(candidate)
                images += candidate.images
            else:
                passed_over.append(entry)
                horizon = min(horizon, entry[0] + one_batch)
        for entry in passed_over:
            heapq.heappush(self._heads, entry)
        self._order = None
        return batch

    def position(self, job_id: int) -> int:
        """How many queued jobs are predicted to start before ``job_id``."""
        order = self._predicted_order()
        job = self._jobs[job_id]
        return bisect.bisect_left(order, (job.predicted_tag, job.job_id))

    def ordered(self) -> list[QueuedJob]:
        """Every queued job in predicted service order (ignoring batching and future arrivals)."""
        return [self._jobs[job_id] for _, job_id in self._predicted_order()]

    # internals

    def _arm(self, member: _MemberQueue) -> None:
        """Tag the member's head job and offer it to the heap."""
        head = member.jobs[0]
        head.start_tag = max(self.virtual_time, member.finish)
        head.virtual_cost = head.cost / member.weight
        member.generation += 1
        heapq.heappush(self._heads, (head.start_tag, head.job_id, head.member_id, member.generation))

    def _valid(self, entry: tuple[float, int, int, int]) -> bool:
        member = self._members[entry[2]]
        return entry[3] == member.generation and bool(member.jobs) and member.jobs[0].job_id == entry[1]

    def _pop_head(self) -> QueuedJob | None:
        while self._heads:
            entry = heapq.heappop(self._heads)
            if self._valid(entry):
                job = self._members[entry[2]].jobs[0]
                # Virtual time is the lead's tag (the smallest waiting), not a batch-mate's: jobs that joined the
                # batch early must not age everyone else's place in line.
                self.virtual_time = job.start_tag
                self._dispatch(job)
                return job
        return None

    def _dispatch(self, job: QueuedJob) -> None:
        member = self._members[job.member_id]
        member.jobs.popleft()
        member.finish = job.start_tag + job.virtual_cost
        del self._jobs[job.job_id]
        self._forget(job)
        if member.jobs:
            self._arm(member)
        else:
            member.generation += 1

    def _forget(self, job: QueuedJob) -> None:
        self.total_cost -= job.cost
        self.total_images -= job.images

    def _insert_predicted(self, member: _MemberQueue, job: QueuedJob) -> None:
        job.predicted_tag = member.tail_tag
        member.tail_tag += job.cost / member.weight
        if self._order is not None:
            bisect.insort(self._order, (job.predicted_tag, job.job_id))

    def _predicted_order(self) -> list[tuple[float, int]]:
        if self._order is None:
            order = []
            for member in self._members.values():
                if member.jobs:
                    tag = member.jobs[0].start_tag
                    for job in member.jobs:
                        job.predicted_tag = tag
                        order.append((tag, job.job_id))
                        tag += job.cost / member.weight
                    member.tail_tag = tag
            order.sort()
            self._order = order
        return self._order
