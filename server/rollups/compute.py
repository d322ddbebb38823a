"""A span's hourly rollups, computed by the reports' own code: the same reader, the same segments,
cut into hours with the same ``totals_by_window`` the report's monthly trend uses.

The segments of a span restricted to an hour are the segments of that hour alone (the reader
decides whether a session goes on past an end from the data after it, not from how far the span
reaches), so any period's rollups sum to what a report of that period counts.

A further dimension plugs in as a ``Split``: given a span's data it returns a function that cuts
a printer's segments into parts with extra tags. ``customers.CustomerSplit`` labels each printing
segment with the customer of the job under way (the report's customer view, cut into hours). The
tags of a printer's points may then change when the hour is recomputed;
``store.RollupStore.replace`` zeroes points no longer produced, so sums stay right.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable

from server.inventory import Inventory
from server.reports import accounting as acc
from server.reports import timelines
from server.reports.query import Key, RawData, Reader
from server.rollups import hours

Segments = list[acc.Segment]
Parts = list[tuple[dict[str, str], Segments]]
# (the span's data, its start, the end of what is counted) -> (printer, its segments) -> parts
Split = Callable[[RawData, int, int], Callable[[Key, Segments], Parts]]


def _one_part(key: Key, segs: Segments) -> Parts:
    return [({}, segs)]


def whole(data: RawData, start: int, until: int) -> Callable[[Key, Segments], Parts]:
    """No further dimension: one part, no extra tags."""
    return _one_part


@dataclass(frozen=True)
class Row:
    """One point: a printer (and its extra dimensions) in one hour."""

    hour: int
    tags: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    ms: dict[str, int]

    @property
    def key(self) -> Key:
        tags = dict(self.tags)
        return tags["site"], tags["printer"]


@dataclass
class Rollup:
    start: int
    end: int
    rows: list[Row] = field(default_factory=list)
    extents: dict[tuple[Key, int], int] = field(default_factory=dict)  # see RawData.extents


def compute(reader: Reader, inventory: Inventory, start: int, end: int, now: int, split: Split = whole,
            tags_of: Callable[[Key], tuple] | None = None) -> Rollup:
    """The rollups of ``[start, end)`` (``start`` on the hour) as of ``now``; ``tags_of`` may
    cache ``printer_tags``."""
    tags_of = tags_of or (lambda key: printer_tags(inventory, key))
    data = reader.fetch(start, end, now)
    until = timelines.counted_until(start, end, now)
    segs = timelines.segments_by_printer(data, inventory, start, until)
    out = Rollup(start, until, extents=data.extents)
    windows = hours.bounds(start, until)
    parts = split(data, start, until)
    for key, printer_segs in segs.items():
        base = tags_of(key)
        for extra, part in parts(key, printer_segs):
            tags = tuple(sorted((*base, *extra.items()))) if extra else base
            out.rows += [Row(hour, tags, ms) for hour, ms in by_hour(part, windows)
                         if ms[acc.NOT_IN_NETWORK] < sum(ms.values())]  # wholly before its first data: no point
    return out


def by_hour(segs: Segments, windows: list[int]) -> list[tuple[int, dict[str, int]]]:
    """(hour, ms per category) for the hours ``segs`` touch, by ``acc.totals_by_window`` over each
    run of touched hours: a customer's part touches a few hours of a month, not all 744."""
    out: list[tuple[int, dict[str, int]]] = []
    run: Segments = []
    low = high = 0  # the run's windows: [low, high)
    last = len(windows) - 1
    for seg in sorted(segs):
        first = max(bisect.bisect_right(windows, seg[0]) - 1, 0)
        if run and first > high:  # an hour untouched since the run: close it
            out += zip(windows[low:high], acc.totals_by_window(run, windows[low:high + 1]))
            run = []
        if not run:
            low = high = first
        run.append(seg)
        high = max(high, min(bisect.bisect_left(windows, seg[1]), last))
    if run:
        out += zip(windows[low:high], acc.totals_by_window(run, windows[low:high + 1]))
    return out


def printer_tags(inventory: Inventory, key: Key) -> tuple[tuple[str, str], ...]:
    """The report's grouping keys, from the current inventory, as sorted (tag, value) pairs."""
    tags = inventory.tags(*key)
    return (("county", tags.county), ("organisation", tags.organisation), ("printer", tags.printer),
            ("site", tags.site))
