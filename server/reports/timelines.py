"""Every printer's segments over a span: the one computation behind both the reports and the hourly
utilisation rollups (server/rollups), so a dashboard summing rollups and a report over the same
period count the same milliseconds.
"""

from __future__ import annotations

from server.inventory import Inventory
from server.reports import accounting as acc
from server.reports.query import Key, RawData


def counted_until(start_ms: int, end_ms: int, now_ms: int) -> int:
    """The end of what is counted: the span's end, or now while it is still running."""
    return max(min(end_ms, now_ms), start_ms)


def with_inventory(data: RawData, inventory: Inventory) -> dict[Key, acc.Timeline]:
    """The printers with data, plus every listed printer: one without data still counts."""
    timelines = dict(data.timelines)
    for printer_id, entry in inventory.printers.items():
        timelines.setdefault((entry.site, printer_id), acc.Timeline())
    return timelines


def segments_by_printer(data: RawData, inventory: Inventory, start_ms: int, end_ms: int) -> dict[Key, list[acc.Segment]]:
    """Each printer's segments over ``[start_ms, end_ms)``, by (site, printer), sorted."""
    timelines = with_inventory(data, inventory)
    return {key: acc.segments(tl, start_ms, end_ms) for key, tl in sorted(timelines.items())}
