"""Simulated time: real time stretched by a speed factor from a chosen starting instant."""

from __future__ import annotations

import time
from typing import Callable


class SimClock:
    """``now()`` is ``start + (real - real_start) * speed``, all in seconds since the epoch."""

    def __init__(self, speed: float = 1.0, start: float | None = None,
                 real: Callable[[], float] = time.time):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real = real
        self.real_start = real()
        self.start = self.real_start if start is None else start

    def now(self) -> float:
        return self.start + (self._real() - self.real_start) * self.speed

    def wall(self, sim_time: float) -> float:
        """The real wall-clock time at which simulated time was ``sim_time`` (what a printer's own
        clock would stamp: agents and the collector live in real time)."""
        return self.real_start + (sim_time - self.start) / self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed
