"""An engine's measured speed: images per second over its recent batches."""

from __future__ import annotations

from collections import deque

RECENT_BATCHES = 20


class SpeedMeter:
    """Images and seconds of the last ``batches`` batches, as one rate."""

    def __init__(self, batches: int = RECENT_BATCHES) -> None:
        self._recent: deque[tuple[int, float]] = deque(maxlen=batches)

    def record(self, images: int, seconds: float) -> None:
        """Count a finished batch of ``images`` that took ``seconds``."""
        if images > 0 and seconds > 0:
            self._recent.append((images, seconds))

    @property
    def images_per_second(self) -> float | None:
        """Images per second over the recent batches; None before the first."""
        seconds = sum(seconds for _, seconds in self._recent)
        return sum(images for images, _ in self._recent) / seconds if seconds else None
