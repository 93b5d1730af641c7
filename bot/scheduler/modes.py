"""Fast and relax modes.

A fast job is charged to the member's quota. A relax job is free (never
charged, so never refunded) but queues at a fraction of the member's tier
weight, and a member may have only a few relax jobs waiting or running at
once: spare GPU time for those who have spent their quota. Each server sets
its own terms; a restart keeps every job's mode (it is journaled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Mode = Literal["fast", "relax"]
MODES: tuple[Mode, ...] = ("fast", "relax")
RELAX: Mode = "relax"


@dataclass(frozen=True)
class RelaxTerms:
    """One server's terms for relax jobs."""

    weight: float = 0.1
    """Fraction of the member's tier weight a relax job queues at."""
    max_jobs: int = 2
    """Relax jobs a member may have waiting or running at once (0: no relax mode)."""


RelaxTermsOf = Callable[[int], RelaxTerms]
"""A server's relax terms, by guild id."""


def queue_weight(mode: str, tier_weight: float, terms: RelaxTerms) -> float:
    """The fair-share weight a job of ``mode`` queues at."""
    return tier_weight * terms.weight if mode == RELAX else tier_weight
