"""How the client groups jobs into UNet batches."""

from engine.batching import plan_batches
from engine.types import GenerationParams, JobRequest

SMALL = GenerationParams(width=64, height=64, steps=3)
OTHER = GenerationParams(width=64, height=64, steps=4)


def job(job_id: str, *seeds: int, params: GenerationParams = SMALL) -> JobRequest:
    return JobRequest(job_id, "p", seeds, params)


def ids(batches: list[list[JobRequest]]) -> list[list[str]]:
    return [[j.job_id for j in batch] for batch in batches]


def test_equal_params_share_a_batch_up_to_the_image_limit() -> None:
    jobs = [job("a", 1, 2, 3), job("b", 4, params=OTHER), job("c", 5, 6), job("d", 7), job("e", 8, params=OTHER)]
    assert ids(plan_batches(jobs, 4)) == [["a", "d"], ["b", "e"], ["c"]]


def test_a_job_larger_than_the_limit_gets_a_batch_of_its_own() -> None:
    assert ids(plan_batches([job("a", 1), job("big", *range(9)), job("b", 2)], 4)) == [["a", "b"], ["big"]]


def test_different_guidance_or_sampler_never_share() -> None:
    jobs = [
        job("a", 1),
        job("b", 2, params=GenerationParams(64, 64, 3, guidance=5.0)),
        job("c", 3, params=GenerationParams(64, 64, 3, sampler="ddim")),
    ]
    assert ids(plan_batches(jobs, 8)) == [["a"], ["b"], ["c"]]


def test_jobs_from_a_start_image_never_share_with_jobs_from_noise() -> None:
    start = b"\x89PNG start image"
    jobs = [job("noise", 1), JobRequest("start", "p", (2,), SMALL, init_image=start), job("noise2", 3),
            JobRequest("start2", "p", (4,), SMALL, init_image=start)]  # fmt: skip
    assert ids(plan_batches(jobs, 8)) == [["noise", "noise2"], ["start", "start2"]]


def test_different_models_never_share() -> None:
    jobs = [job("a", 1), job("b", 2, params=GenerationParams(64, 64, 3, model="anime")), job("c", 3)]
    assert ids(plan_batches(jobs, 8)) == [["a", "c"], ["b"]]
