"""Fixtures of the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Stable Diffusion XL pipeline written once per test session (no download)."""
    from engine.tiny_sdxl import write_tiny_sdxl  # imports torch: only tests that ask for the model pay for it

    return write_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl"))
