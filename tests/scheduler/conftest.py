"""Fixtures for the scheduler tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.scheduler.clock import VirtualClock
from tests.scheduler.harness import Harness, settings


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def harness(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Harness]:
    scheduler, quotas = settings()
    harness = Harness(tmp_path / "dq.db", clock, scheduler, quotas)
    await harness.start()
    yield harness
    await harness.stop()
