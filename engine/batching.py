"""Sorting one ``generate`` call's jobs into the valid ones and into UNet batches (shared by every engine)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.types import JobRequest, JobResult, Limits, Outcome, RequestError


def refuse_invalid(jobs: Sequence[JobRequest], limits: Limits) -> tuple[list[JobRequest], dict[str, JobResult]]:
    """Split ``jobs`` into those within ``limits`` and FAILED results, naming the field, for the rest."""
    valid: list[JobRequest] = []
    refused: dict[str, JobResult] = {}
    for job in jobs:
        try:
            job.validate(limits)
        except RequestError as exc:
            refused[job.job_id] = JobResult(job.job_id, Outcome.FAILED, error=str(exc))
        else:
            valid.append(job)
    return valid, refused


def plan_batches(jobs: Sequence[JobRequest], max_images: int) -> list[list[JobRequest]]:
    """Group jobs with equal params into batches of at most ``max_images`` images, first come first placed.

    Jobs from a start image (img2img) and jobs from noise never share a batch: they run different pipelines.
    A job larger than ``max_images`` gets a batch of its own (the engine runs it
    in several UNet batches).
    """
    batches: list[list[JobRequest]] = []
    for job in jobs:
        for batch in batches:
            if shares_batch(batch[0], job) and sum(other.count for other in batch) + job.count <= max_images:
                batch.append(job)
                break
        else:
            batches.append([job])
    return batches


def shares_batch(first: JobRequest, second: JobRequest) -> bool:
    """Whether two jobs can run in one UNet batch: equal params, and both from noise or both from a start image."""
    return first.params == second.params and (first.init_image is None) == (second.init_image is None)
