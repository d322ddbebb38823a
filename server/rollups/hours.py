"""Hour arithmetic on UTC milliseconds (rollups are hourly in UTC; every whole-hour time zone,
Europe/Stockholm included, starts its days, months and quarters on a UTC hour)."""

from __future__ import annotations

HOUR = 3_600_000


def floor(ms: int) -> int:
    return ms - ms % HOUR


def ceil(ms: int) -> int:
    return -(-ms // HOUR) * HOUR


def bounds(start: int, end: int) -> list[int]:
    """``start`` (on the hour), every hour after it before ``end``, then ``end``."""
    return list(range(start, end, HOUR)) + [end] if end > start else [start]


def spans(start: int, end: int, length: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into pieces of ``length`` ms (a whole number of hours)."""
    edges = list(range(start, end, length)) + [end]
    return list(zip(edges, edges[1:]))
