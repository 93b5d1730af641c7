"""Weighted fair queuing of GPU cost in two levels, servers then members: start-time fair queuing with batching.

Each member has a FIFO queue inside their server. At both levels a queue that
has work carries a virtual start tag ``S = max(V, F)``: ``V`` is the level's
virtual time (the smallest tag waiting when the last batch formed: its lead's,
unless a job on the engine's model led, below) and ``F`` the virtual finish of the queue's previous
job; dispatching a job of cost ``c`` sets ``F = S + c / weight``. Servers are
tagged in the root's virtual time with the operator's server weight; members
in their server's virtual time with their tier weight. The server with the
smallest tag leads the next batch, with the job of its member with the
smallest tag. While servers stay backlogged, their GPU cost divided by their
weight stays within about one job (plus one batch, below) of each other's,
and within a server the same holds between members. A server (or a member)
that arrives with nothing queued gets ``S = V``: ahead of everything a flooder
has waiting, so a flooding server of 500 members delays a small server's
first job by at most the batch already running (with several models, plus
about one model swap's worth: below).

This is start-time fair queuing (Goyal et al., 1996) made hierarchical, rather
than deficit round robin: its bound does not depend on tuning a quantum
against job sizes, and weights and per-job costs of any size come for free.

Batching: after the lead job is taken, other heads with the same generation
parameters join the batch in tag order (servers by their tag, then their
members by theirs; a job that joins re-tags its server and member, so their
next job may join too). Once a head has been passed over (incompatible, or
too many images), later candidates may only join while their tag is within
one full batch of that head's (at the server level, and inside the passed-over
head's server), so nobody races ahead of a waiting server or member by more
than a batch. Joining costs the joiner virtual time like any dispatch, so
batching never buys extra share.

Models: an engine keeps one model loaded and swapping it costs seconds to
tens of seconds, so the dispatcher says which model the engine has and what
a swap costs (``scheduler.model_switch_cost_s`` at the measured speed). The
lead is then the first head on that model in tag order (servers, then their
members) as long as every head passed over on the way is within one swap's
cost of it, in the passed-over member's (or server's) own virtual time;
beyond, the fairest leads and the engine swaps. While a batch fills, a head
on another model than the batch's lets others join within the larger of one
batch and one swap of its tag. So a job passed over to keep a model loaded
loses at most about one swap's worth of its own share, less than the swap
would waste; a newcomer on another model waits at most the running batch,
one swap's worth and one batch; members backlogged on two models take runs
of about two swaps' worth each instead of a swap at every batch. With one
model, or a swap cost of 0, the fairest always leads. A pick walks past at
most ``OTHER_MODEL_PASSES`` heads of other models, so its cost stays that of
a pick without models; past them it leads with the fairest, or stops filling.

Predicted order (for positions and ETAs) ignores batching, models and future
arrivals: inside a server, jobs go in the order of their members' tags, as
with one level; the server's k-th job then starts at the root tag ``S +
(cost of the server's jobs before it) / server weight``, and servers
interleave by those tags.
"""

from __future__ import annotations

import bisect
import heapq
import math

from bot.scheduler.serverqueue import Entry, Passes, QueuedJob, ServerQueue

__all__ = ["FairQueue", "QueuedJob"]


class FairQueue:
    """Per-member FIFO queues in per-server groups, served by two-level start-time fair queuing on GPU cost."""

    def __init__(self) -> None:
        self.virtual_time = 0.0
        self._servers: dict[int, ServerQueue] = {}
        self._jobs: dict[int, QueuedJob] = {}
        self._heads: list[Entry] = []  # servers: (start tag, head job id, guild id, generation)
        self.total_cost = 0
        self.total_images = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._jobs

    def queued_by(self, guild_id: int, member_id: int) -> int:
        """Jobs the member has queued in the server."""
        server = self._servers.get(guild_id)
        member = server.members.get(member_id) if server else None
        return len(member.jobs) if member else 0

    def server_load(self, guild_id: int) -> tuple[int, int, int, int]:
        """The server's queued jobs, images, GPU cost and members with work waiting."""
        server = self._servers.get(guild_id)
        if server is None:
            return 0, 0, 0, 0
        return server.jobs, server.images, server.cost, server.waiting_members()

    @property
    def members_waiting(self) -> int:
        return sum(server.waiting_members() for server in self._servers.values())

    def push(self, job: QueuedJob, weight: float, server_weight: float = 1.0, *, front: bool = False) -> None:
        """Queue ``job`` at the back of its member's queue (``front``: back at the head, after an engine failure).

        ``weight`` is the member's tier weight, ``server_weight`` the server's share of the GPU.
        """
        server = self._servers.get(job.guild_id)
        if server is None:
            server = self._servers[job.guild_id] = ServerQueue(server_weight)
        server.weight = server_weight
        member = server.member(job.member_id, weight)
        self._jobs[job.job_id] = job
        self._count(server, job, +1)
        if front:
            # Undo the charge in virtual time: the engine failed, not the member.
            member.finish -= job.virtual_cost
            server.finish -= job.server_cost
            member.jobs.appendleft(job)
            server.arm(job.member_id)
            server.order = None
            self._arm_server(job.guild_id)
            return
        member.jobs.append(job)
        if len(member.jobs) == 1:
            server.arm(job.member_id)
            member.tail_tag = job.start_tag
        server.insert_predicted(member, job)
        if server.jobs == 1:
            self._arm_server(job.guild_id)

    def remove(self, job_id: int) -> QueuedJob | None:
        """Take a queued job out (cancelled); None if it is not queued."""
        job = self._jobs.pop(job_id, None)
        if job is None:
            return None
        server = self._servers[job.guild_id]
        member = server.members[job.member_id]
        was_head = member.jobs[0] is job
        member.jobs.remove(job)
        self._count(server, job, -1)
        if was_head:
            server.after_head_left(job.member_id)
        if not server.jobs:
            server.generation += 1
        server.order = None
        return job

    def pick(self, max_images: int, model: str | None = None, switch_cost: float = 0.0) -> list[QueuedJob]:
        """Take the next batch: the fairest head, plus compatible heads within one batch of any passed over.

        ``model`` is the model the engine has loaded and ``switch_cost`` the GPU cost of swapping it out: a head on
        ``model`` leads instead of the fairest while every head it passes over is within that cost of its turn,
        and a head on another model than the batch's, once passed over, lets others join within that cost too.
        """
        lead = self._pop_lead(model, switch_cost)
        if lead is None:
            return []
        batch, images = [lead], lead.images
        # One full batch of the lead's kind, in each level's virtual time.
        one_batch = max_images * lead.virtual_cost / lead.images
        one_batch_root = max_images * lead.server_cost / lead.images
        passes = Passes()
        contributed = {lead.guild_id}
        while images < max_images and (entry := self._pop_server(passes.horizon)) is not None:
            guild_id = entry[2]
            server = self._servers[guild_id]
            joined = None
            while (head := server.pop_head(passes.inner_horizon.get(guild_id, math.inf))) is not None:
                inner, candidate = head
                if candidate.params == lead.params and images + candidate.images <= max_images:
                    joined = candidate
                    break
                if candidate.params.model == lead.params.model:
                    passes.pass_over(entry, inner, one_batch, one_batch_root)
                else:  # it waits for a swap anyway: the batch may fill while that wait stays within one swap
                    weight = server.members[inner[2]].weight
                    passes.pass_other_model(entry, inner, max(one_batch, switch_cost / weight),
                                            max(one_batch_root, switch_cost / server.weight))
            if joined is None:
                passes.set_aside.append(entry)
                continue
            if guild_id not in contributed and guild_id not in passes.passed_inner:
                server.virtual_time = max(server.virtual_time, joined.start_tag)
            contributed.add(guild_id)
            self._dispatch(server, joined, entry[0])
            batch.append(joined)
            images += joined.images
            if server.jobs:
                self._arm_server(guild_id)
        # Passed-over heads were off their server's heap when it was last tagged: offer those servers again.
        for guild_id in passes.restore(self._heads, self._servers):
            self._arm_server(guild_id)
        return batch

    def position(self, job_id: int) -> int:
        """How many queued jobs are predicted to start before ``job_id``."""
        job = self._jobs[job_id]
        own = self._servers[job.guild_id]
        index = bisect.bisect_left(own.predicted_order(), (job.predicted_tag, job.job_id))
        others = [server for server in self._servers.values() if server is not own and server.jobs]
        if not others:
            return index
        root = own.predicted_root_tags(self._jobs)[index]
        for server in others:
            tags = server.predicted_root_tags(self._jobs)
            ahead = bisect.bisect_left(tags, root)
            if ahead < len(tags) and tags[ahead] == root and server.predicted_order()[ahead][1] < job_id:
                ahead += 1  # a tie goes to the earlier job
            index += ahead
        return index

    def ordered(self) -> list[QueuedJob]:
        """Every queued job in predicted service order (ignoring batching and future arrivals)."""
        keyed = []
        for server in self._servers.values():
            if server.jobs:
                job_ids = (job_id for _, job_id in server.predicted_order())
                keyed.extend(zip(server.predicted_root_tags(self._jobs), job_ids, strict=True))
        keyed.sort()
        return [self._jobs[job_id] for _, job_id in keyed]

    # internals: the root level

    def _count(self, server: ServerQueue, job: QueuedJob, sign: int) -> None:
        server.count(job, sign)
        self.total_cost += sign * job.cost
        self.total_images += sign * job.images

    def _arm_server(self, guild_id: int) -> None:
        """Tag the server in the root's virtual time and offer it to the root heap."""
        server = self._servers[guild_id]
        head = server.head()
        server.generation += 1
        if head is None:
            return
        server.start_tag = max(self.virtual_time, server.finish)
        server.root_tags = None
        heapq.heappush(self._heads, (server.start_tag, head.job_id, guild_id, server.generation))

    def _server_valid(self, entry: Entry) -> bool:
        server = self._servers[entry[2]]
        return entry[3] == server.generation and server.jobs > 0

    def _pop_server(self, horizon: float) -> Entry | None:
        """Pop the server with the smallest root tag if that tag is at most ``horizon``, dropping stale entries."""
        while self._heads:
            entry = self._heads[0]
            if not self._server_valid(entry):
                heapq.heappop(self._heads)
                continue
            return heapq.heappop(self._heads) if entry[0] <= horizon else None
        return None

    def _pop_lead(self, model: str | None, switch_cost: float) -> QueuedJob | None:
        while (entry := self._pop_server(math.inf)) is not None:
            server = self._servers[entry[2]]
            job = server.head()
            if job is None:
                continue
            # Virtual times are the fairest tags (the smallest waiting), not a batch-mate's nor a lead on the
            # loaded model's: jobs served early must not age everyone else's place in line.
            self.virtual_time = entry[0]
            if model is not None and switch_cost > 0 and job.params.model != model:
                heapq.heappush(self._heads, entry)
                entry, job = self._lead_on(model, switch_cost) or (heapq.heappop(self._heads), job)
                server = self._servers[entry[2]]
            if job is server.head():  # the fairest of its server leads (always, unless a job on the model does)
                heapq.heappop(server.heads)
                server.virtual_time = job.start_tag
            self._dispatch(server, job, entry[0])
            if server.jobs:
                self._arm_server(entry[2])
            return job
        return None

    def _lead_on(self, model: str, switch_cost: float) -> tuple[Entry, QueuedJob] | None:
        """The fairest head on ``model`` (off its server's heap) and its server's root entry, if every head before it
        in tag order is within ``switch_cost`` (in that head's weight, at each level) of it; None if there is none.

        A head passed over loses at most about one swap's worth of its own share: less than a swap would waste."""
        passes = Passes()
        found = None
        while found is None and (entry := self._pop_server(passes.horizon)) is not None:
            server = self._servers[entry[2]]
            fairest = server.head()
            while (head := server.pop_head(passes.inner_horizon.get(entry[2], math.inf))) is not None:
                inner, candidate = head
                if candidate.params.model == model:
                    found = entry, candidate
                    break
                weight = server.members[inner[2]].weight
                passes.pass_other_model(entry, inner, switch_cost / weight, switch_cost / server.weight)
            if found is None:
                passes.set_aside.append(entry)
            elif fairest is not None:
                server.virtual_time = fairest.start_tag
        passes.restore(self._heads, self._servers)
        return found

    def _dispatch(self, server: ServerQueue, job: QueuedJob, server_tag: float) -> None:
        """Take a head job (already off the heaps) and charge member and server their virtual time."""
        del self._jobs[job.job_id]
        self.total_cost -= job.cost
        self.total_images -= job.images
        server.take(job, server_tag)
