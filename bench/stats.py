"""The statistics the scheduler scenarios print: percentiles of waits and Jain's fairness index, whole and windowed."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from bench.simulation import JobRecord


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def jain(values: list[float]) -> float:
    """Jain's fairness index of ``values``: 1 when all are equal, 1/n when one has everything."""
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def windowed_jain(jobs: dict[int, JobRecord], start: float, end: float, window: float) -> tuple[float, float, float, int]:
    """Jain's index of weight-divided GPU time among members backlogged through each whole window.

    A member is backlogged from the admission of a job while they had none to
    the end of their last one; a job's GPU time is spread evenly over the batch
    that ran it. Returns (mean, minimum, mean members per window, windows).
    """
    intervals: dict[int, list[list[float]]] = defaultdict(list)
    weight: dict[int, float] = {}
    for job in sorted(jobs.values(), key=lambda j: j.queued):
        if job.finished is None:
            job.finished = math.inf
        spans = intervals[job.member]
        if spans and job.queued <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], job.finished)
        else:
            spans.append([job.queued, job.finished])
        weight[job.member] = job.weight
    indices, sizes = [], []
    t = start
    while t + window <= end:
        members = [m for m, spans in intervals.items() if any(a <= t and b >= t + window for a, b in spans)]
        if len(members) >= 2:
            served = dict.fromkeys(members, 0.0)
            for job in jobs.values():
                if job.member in served and job.started is not None and job.finished > job.started:
                    overlap = min(job.finished, t + window) - max(job.started, t)
                    if overlap > 0:
                        served[job.member] += job.gpu_seconds * overlap / (job.finished - job.started)
            indices.append(jain([served[m] / weight[m] for m in members]))
            sizes.append(len(members))
        t += window
    if not indices:
        return math.nan, math.nan, 0.0, 0
    return statistics.fmean(indices), min(indices), statistics.fmean(sizes), len(indices)
