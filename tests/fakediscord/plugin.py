"""Pytest fixture: ``fake_discord``, an open :class:`FakeDiscord` closed (bot stopped, discord.py
unpatched) after the test.

Use it from a test module with ``from tests.fakediscord.plugin import fake_discord  # noqa: F401``,
or for a whole folder with ``pytest_plugins = ["tests.fakediscord.plugin"]`` in the root conftest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import FakeDiscord


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake
