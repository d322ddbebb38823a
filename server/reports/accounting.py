"""Time in state per printer, from state changes, exact to the millisecond. Pure functions.

A printer's timeline is cut into segments ``(start_ms, end_ms, category)``:

- from each state point to the next one, the printer was in that point's state;
- an agent's first poll after it starts writes a state point with ``prev_state`` "none"
  (a *session start*). The previous session lasted until its last data (the last telemetry
  or state point before the new session); from there to the new session start there is no
  data, and that time is ``unknown`` — never guessed as idle;
- after its last data a silent printer is ``unknown`` until the period ends;
- before a printer's first data ever it was ``not_in_network`` (added later).

States map to categories: printing and finishing (and the seconds of cancelling) count as
printing; paused, idle and error count separately; offline and unreachable count as offline.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

PRINTING, PAUSED, IDLE, ERROR, OFFLINE = "printing", "paused", "idle", "error", "offline"
UNKNOWN, NOT_IN_NETWORK = "unknown", "not_in_network"
CATEGORIES = (PRINTING, PAUSED, IDLE, ERROR, OFFLINE, UNKNOWN, NOT_IN_NETWORK)

STATE_CATEGORY = {
    "printing": PRINTING, "finishing": PRINTING, "cancelling": PRINTING,
    "paused": PAUSED, "idle": IDLE, "error": ERROR,
    "offline": OFFLINE, "unreachable": OFFLINE,
}

Segment = tuple[int, int, str]


@dataclass(slots=True)
class StatePoint:
    ts: int
    state: str
    session_start: bool = False  # prev_state was "none": an agent's first poll after starting


@dataclass
class Timeline:
    """What the database holds about one printer around a period (see query.py)."""

    initial: StatePoint | None = None  # last state point before the period, if any ever
    points: list[StatePoint] = field(default_factory=list)  # state points in the period, by time
    last_data_before: dict[int, int] = field(default_factory=dict)  # session start ts -> last data ts before it
    last_data: int | None = None  # last data before the period's end
    continues: bool = False  # the same session goes on at or after the period's end


def category(state: str) -> str:
    return STATE_CATEGORY.get(state, UNKNOWN)


def segments(tl: Timeline, start: int, end: int) -> list[Segment]:
    """The printer's timeline over ``[start, end)`` as non-overlapping segments covering it."""
    pts = ([tl.initial] if tl.initial else []) + tl.points
    if not pts:
        return [(start, end, NOT_IN_NETWORK)]
    raw: list[Segment] = []
    if tl.initial is None:
        raw.append((start, pts[0].ts, NOT_IN_NETWORK))
    # One loop, no list per point: a year of 100 printers is ~300,000 points (``_after`` spelled out).
    before, get = tl.last_data_before, STATE_CATEGORY.get
    for point, nxt in zip(pts, pts[1:]):
        cat = get(point.state, UNKNOWN)
        if nxt.session_start:
            stop = min(max(point.ts, before.get(nxt.ts, point.ts)), nxt.ts)
            raw += ((point.ts, stop, cat), (stop, nxt.ts, UNKNOWN))
        else:
            raw.append((point.ts, nxt.ts, cat))
    raw += _after(pts[-1], None, tl, end)
    return _clip(raw, start, end)


def _after(point: StatePoint, nxt: StatePoint | None, tl: Timeline, end: int) -> list[Segment]:
    """Segments from ``point`` up to the next point (or the period's end)."""
    cat = category(point.state)
    if nxt is None:
        stop = end if tl.continues else max(point.ts, tl.last_data or point.ts)
        return [(point.ts, stop, cat), (stop, end, UNKNOWN)]
    if nxt.session_start:
        stop = min(max(point.ts, tl.last_data_before.get(nxt.ts, point.ts)), nxt.ts)
        return [(point.ts, stop, cat), (stop, nxt.ts, UNKNOWN)]
    return [(point.ts, nxt.ts, cat)]


def _clip(raw: list[Segment], start: int, end: int) -> list[Segment]:
    out = []
    for seg in raw:
        a, b, cat = seg
        if start <= a and b <= end:  # most are inside: kept as they are
            if b > a:
                out.append(seg)
            continue
        a, b = max(a, start), min(b, end)
        if b > a:
            out.append((a, b, cat))
    return out


def totals(segs: list[Segment], start: int | None = None, end: int | None = None) -> dict[str, int]:
    """Milliseconds per category, optionally clipped to ``[start, end)``."""
    out = dict.fromkeys(CATEGORIES, 0)
    for a, b, cat in segs:
        if start is not None:
            a, b = max(a, start), min(b, end)
        if b > a:
            out[cat] += b - a
    return out


def totals_by_window(segs: list[Segment], bounds: list[int]) -> list[dict[str, int]]:
    """Milliseconds per category in each window ``[bounds[i], bounds[i+1])``, in one pass. Segments
    in time order (as ``segments`` makes them) walk the windows along; any other is looked up."""
    out = [dict.fromkeys(CATEGORIES, 0) for _ in bounds[1:]]
    n = len(out)
    if not n:
        return out
    i, low, high = 0, bounds[0], bounds[1]
    for a, b, cat in segs:
        if a < low and i:
            i = max(bisect.bisect_right(bounds, a) - 1, 0)
            low, high = bounds[i], bounds[i + 1]
        while a >= high and i < n - 1:
            i += 1
            low, high = high, bounds[i + 1]
        if low <= a and b <= high:  # within one window, the usual case
            if b > a:
                out[i][cat] += b - a
            continue
        j = i
        while j < n and bounds[j] < b:
            lo, hi = max(a, bounds[j]), min(b, bounds[j + 1])
            if hi > lo:
                out[j][cat] += hi - lo
            j += 1
    return out


def in_network(ms: dict[str, int]) -> int:
    """The printer's share of the period: all of it except the time before its first data."""
    return sum(ms.values()) - ms[NOT_IN_NETWORK]


def available(ms: dict[str, int]) -> int:
    """Time the printer could be used: in the network, neither offline nor without data."""
    return in_network(ms) - ms[OFFLINE] - ms[UNKNOWN]


def ratio(part: int | float, whole: int | float) -> float | None:
    """``part / whole``, or None when ``whole`` is zero (shown as "n/a", never as 0 %)."""
    return part / whole if whole > 0 else None
