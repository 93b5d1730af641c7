"""One server's part of the fair queue: its members' FIFO queues, served by start-time fair queuing in the
server's own virtual time, and the order its jobs are predicted to run in (see :mod:`.fairqueue`); and the heads
passed over while a batch forms."""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from engine.types import GenerationParams

OTHER_MODEL_PASSES = 32
"""Heads on another model than wanted that one pick passes over before it stops looking: walking further would
cost the event loop more than keeping a model loaded saves (it only makes batches smaller, or the engine swap sooner)."""

Entry = tuple[float, int, int, int]
"""A heap entry: (start tag, job id for ties, member or server id, generation when pushed)."""


@dataclass(eq=False)
class QueuedJob:
    """A job as the fair queue sees it. ``job_id`` orders ties (earlier ids first)."""

    job_id: int
    guild_id: int
    member_id: int
    cost: int
    images: int
    params: GenerationParams
    start_tag: float = 0.0
    virtual_cost: float = 0.0
    """Cost in the server's virtual time (divided by the member's weight)."""
    server_cost: float = 0.0
    """Cost in the root's virtual time (divided by the server's weight)."""
    predicted_tag: float = 0.0


@dataclass(eq=False)
class MemberQueue:
    weight: float
    jobs: deque[QueuedJob] = field(default_factory=deque)
    finish: float = 0.0
    generation: int = 0
    tail_tag: float = 0.0


@dataclass(eq=False)
class ServerQueue:
    """A server's members' queues, with the server's own tags in the root's virtual time."""

    weight: float
    members: dict[int, MemberQueue] = field(default_factory=dict)
    heads: list[Entry] = field(default_factory=list)
    virtual_time: float = 0.0
    start_tag: float = 0.0
    finish: float = 0.0
    generation: int = 0
    jobs: int = 0
    cost: int = 0
    images: int = 0
    order: list[tuple[float, int]] | None = field(default_factory=list)
    """Predicted service order inside the server: (member-level tag, job id); None = rebuild on demand."""
    root_tags: list[float] | None = None
    """The root tag each job of ``order`` is predicted to start at; None = recompute on demand."""

    def member(self, member_id: int, weight: float) -> MemberQueue:
        """The member's queue (made on first use), under their current tier weight."""
        member = self.members.get(member_id)
        if member is None:
            member = self.members[member_id] = MemberQueue(weight)
        if member.weight != weight:
            member.weight = weight
            self.order = None
        return member

    def count(self, job: QueuedJob, sign: int) -> None:
        self.jobs += sign
        self.cost += sign * job.cost
        self.images += sign * job.images
        self.root_tags = None

    def waiting_members(self) -> int:
        return sum(1 for member in self.members.values() if member.jobs)

    def arm(self, member_id: int) -> None:
        """Tag the member's head job in the server's virtual time and offer it to the server's heap."""
        member = self.members[member_id]
        head = member.jobs[0]
        head.start_tag = max(self.virtual_time, member.finish)
        head.virtual_cost = head.cost / member.weight
        member.generation += 1
        heapq.heappush(self.heads, (head.start_tag, head.job_id, member_id, member.generation))

    def valid(self, entry: Entry) -> bool:
        member = self.members[entry[2]]
        return entry[3] == member.generation and bool(member.jobs) and member.jobs[0].job_id == entry[1]

    def head(self) -> QueuedJob | None:
        """The job with the smallest tag (left on the heap), dropping stale entries."""
        while self.heads:
            entry = self.heads[0]
            if self.valid(entry):
                return self.members[entry[2]].jobs[0]
            heapq.heappop(self.heads)
        return None

    def pop_head(self, limit: float) -> tuple[Entry, QueuedJob] | None:
        """Take the smallest-tagged entry off the heap, with its job, if its tag is at most ``limit``."""
        head = self.head()
        if head is None or self.heads[0][0] > limit:
            return None
        return heapq.heappop(self.heads), head

    def after_head_left(self, member_id: int) -> None:
        member = self.members[member_id]
        if member.jobs:
            self.arm(member_id)
        else:
            member.generation += 1

    def take(self, job: QueuedJob, server_tag: float) -> None:
        """Dispatch the member's head job (already off the heap): charge member and server their virtual time."""
        member = self.members[job.member_id]
        member.jobs.popleft()
        member.finish = job.start_tag + job.virtual_cost
        job.server_cost = job.cost / self.weight
        self.finish = server_tag + job.server_cost
        self.count(job, -1)
        self.after_head_left(job.member_id)
        self.order = None

    def insert_predicted(self, member: MemberQueue, job: QueuedJob) -> None:
        """Give a job queued behind others its predicted tag, keeping the predicted order sorted."""
        job.predicted_tag = member.tail_tag
        member.tail_tag += job.cost / member.weight
        if self.order is not None:
            bisect.insort(self.order, (job.predicted_tag, job.job_id))

    def predicted_order(self) -> list[tuple[float, int]]:
        """The server's jobs as (member-level tag, job id), in the order they are predicted to run."""
        if self.order is None:
            order = []
            for member in self.members.values():
                if member.jobs:
                    tag = member.jobs[0].start_tag
                    for job in member.jobs:
                        job.predicted_tag = tag
                        order.append((tag, job.job_id))
                        tag += job.cost / member.weight
                    member.tail_tag = tag
            order.sort()
            self.order = order
        return self.order

    def predicted_root_tags(self, jobs: dict[int, QueuedJob]) -> list[float]:
        """The root tag each job of :meth:`predicted_order` should start at (strictly increasing: costs are > 0)."""
        if self.root_tags is None:
            costs = (jobs[job_id].cost / self.weight for _, job_id in self.predicted_order())
            self.root_tags = [self.start_tag + before for before in itertools.accumulate(costs, initial=0.0)][:-1]
        return self.root_tags


class Passes:
    """The heads passed over while a batch forms, and how far past their tags later candidates may still go."""

    def __init__(self) -> None:
        self.horizon = math.inf  # root level: until someone is passed over, filling the batch delays nobody
        self.inner_horizon: dict[int, float] = {}
        self.passed_inner: dict[int, list[Entry]] = {}
        self.set_aside: list[Entry] = []
        self.other_models = 0

    def pass_over(self, server: Entry, inner: Entry, reach: float, reach_root: float) -> None:
        """Note a member's head passed over: later ones may go at most ``reach`` past it (``reach_root`` past its
        server at the root level)."""
        guild_id = server[2]
        self.passed_inner.setdefault(guild_id, []).append(inner)
        self.inner_horizon[guild_id] = min(self.inner_horizon.get(guild_id, math.inf), inner[0] + reach)
        self.horizon = min(self.horizon, server[0] + reach_root)

    def pass_other_model(self, server: Entry, inner: Entry, reach: float, reach_root: float) -> None:
        """Note a head on another model than wanted passed over; after :data:`OTHER_MODEL_PASSES` of them, nothing
        more may be looked at."""
        self.pass_over(server, inner, reach, reach_root)
        self.other_models += 1
        if self.other_models >= OTHER_MODEL_PASSES:
            self.horizon = self.inner_horizon[server[2]] = -math.inf

    def restore(self, heads: list[Entry], servers: dict[int, ServerQueue]) -> list[int]:
        """Put every entry passed over back on its heap; return the servers whose member heads were passed over."""
        for entry in self.set_aside:
            heapq.heappush(heads, entry)
        for guild_id, entries in self.passed_inner.items():
            for inner in entries:
                heapq.heappush(servers[guild_id].heads, inner)
        return list(self.passed_inner)
