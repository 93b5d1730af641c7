"""Out-of-memory backoff: a batch that does not fit is retried in halves."""

from collections.abc import Sequence

import pytest

from engine.backoff import is_out_of_memory, run_in_chunks


class FakeOutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError, which subclasses RuntimeError under that name."""


FakeOutOfMemoryError.__name__ = "OutOfMemoryError"


class FakeGPU:
    """Runs items, raising an out-of-memory error for more than ``fits`` at once."""

    def __init__(self, fits: int, error: Exception | None = None) -> None:
        self.fits = fits
        self.error = error or FakeOutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.calls: list[int] = []

    def __call__(self, chunk: Sequence[int]) -> list[int]:
        self.calls.append(len(chunk))
        if len(chunk) > self.fits:
            raise self.error
        return [item * 10 for item in chunk]


def test_everything_fits_in_one_call() -> None:
    gpu = FakeGPU(fits=8)
    assert run_in_chunks(gpu, [1, 2, 3, 4], size=8) == [10, 20, 30, 40]
    assert gpu.calls == [4]


def test_halves_until_it_fits_and_keeps_the_smaller_size() -> None:
    gpu = FakeGPU(fits=2)
    shrinks: list[int] = []
    assert run_in_chunks(gpu, list(range(1, 8)), size=8, on_shrink=shrinks.append) == [i * 10 for i in range(1, 8)]
    assert shrinks == [3, 1]  # 7 -> 3 -> 1: halving the chunk that failed
    assert gpu.calls == [7, 3, 1, 1, 1, 1, 1, 1, 1]


def test_max_batch_size_splits_without_out_of_memory() -> None:
    gpu = FakeGPU(fits=100)
    assert run_in_chunks(gpu, list(range(9)), size=4) == [i * 10 for i in range(9)]
    assert gpu.calls == [4, 4, 1]


def test_a_runtime_error_saying_out_of_memory_counts() -> None:
    gpu = FakeGPU(fits=1, error=RuntimeError("CUDA error: out of memory"))
    assert run_in_chunks(gpu, [1, 2], size=2) == [10, 20]


def test_one_item_out_of_memory_fails() -> None:
    with pytest.raises(FakeOutOfMemoryError):
        run_in_chunks(FakeGPU(fits=0), [1, 2, 3, 4], size=4)


def test_other_errors_are_not_retried() -> None:
    gpu = FakeGPU(fits=1, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_in_chunks(gpu, [1, 2], size=2)
    assert gpu.calls == [2]


def test_stopping_returns_none() -> None:
    calls = []

    def stop_on_second(chunk: Sequence[int]) -> list[int] | None:
        calls.append(list(chunk))
        return None if len(calls) == 2 else list(chunk)

    assert run_in_chunks(stop_on_second, [1, 2, 3], size=1) is None
    assert calls == [[1], [2]]


def test_out_of_memory_detection() -> None:
    assert is_out_of_memory(FakeOutOfMemoryError("anything"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 20 MiB"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Half"))
    assert not is_out_of_memory(ValueError("out of memory"))
