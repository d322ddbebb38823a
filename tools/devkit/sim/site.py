"""When a simulated site is open, and when it loses its network."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

try:
    from zoneinfo import ZoneInfo

    LOCAL = ZoneInfo("Europe/Stockholm")
except Exception:  # no tz database: Swedish winter time is close enough for a simulation
    LOCAL = timezone(timedelta(hours=1))

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass
class SiteSchedule:
    """Opening hours in local time and a list of network outages (start, end) in epoch seconds.

    A site open 0-24 every day is a print farm that never switches its printers off.
    """

    site: str
    open_hour: int = 7
    close_hour: int = 21
    weekdays_only: bool = False
    outages: list[tuple[float, float]] = field(default_factory=list)

    @property
    def always_open(self) -> bool:
        return self.open_hour == 0 and self.close_hour >= 24 and not self.weekdays_only

    def is_open(self, t: float) -> bool:
        if self.always_open:
            return True
        local = datetime.fromtimestamp(t, LOCAL)
        if self.weekdays_only and local.weekday() >= 5:
            return False
        return self.open_hour <= local.hour < self.close_hour

    def next_open(self, t: float) -> float:
        """The first full hour at or after ``t`` when the site is open (``t`` if open now)."""
        if self.is_open(t):
            return t
        probe = (int(t // HOUR) + 1) * HOUR
        for _ in range(24 * 8):
            if self.is_open(probe):
                return probe
            probe += HOUR
        return t + DAY  # never open: look again tomorrow

    def down(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)


def random_outages(rng: random.Random, start: float, days: float, per_day: float,
                   min_minutes: float = 5, max_minutes: float = 45) -> list[tuple[float, float]]:
    """Network outages as a Poisson process of ``per_day`` events, each a few minutes long."""
    outages, t = [], start
    if per_day <= 0:
        return outages
    while True:
        t += rng.expovariate(per_day / DAY)
        if t >= start + days * DAY:
            return outages
        outages.append((t, t + rng.uniform(min_minutes, max_minutes) * 60))
