"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fakediscord.plugin"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Stable Diffusion pipeline written once per test session (no download)."""
    from engine.tiny import write_tiny_model  # imports torch: only tests that ask for the model pay for it

    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"))
