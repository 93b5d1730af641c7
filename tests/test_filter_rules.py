"""Building what lives as long as the process out of the garbage collector's way (``bot.filter_rules.long_lived``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.filter_rules import long_lived


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Thaw what a test froze (and anything frozen before it), so later tests' garbage is collected as usual."""
    assert gc.isenabled()
    yield
    gc.unfreeze()


def test_collection_pauses_inside_and_what_was_made_is_frozen_after(unfrozen: None) -> None:
    frozen = gc.get_freeze_count()
    with long_lived():
        assert not gc.isenabled()
        made = [[] for _ in range(100)]
    assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(made)


def test_a_failed_build_freezes_nothing_and_collection_goes_on(unfrozen: None) -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(RuntimeError), long_lived():
        raise RuntimeError("the config's filter could not be built")
    assert gc.isenabled() and gc.get_freeze_count() == frozen
