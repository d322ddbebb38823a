"""The bookings file: which customer booked a printer (or a whole site) when.

```csv
site,printer,from,to,customer
ansp-lab,ansp-x1c-01,2026-09-01,2026-09-05,hjalmar-gjuteri
mdu-vasteras,,2026-10-12T08:00,2026-10-12T17:00,region-orebro
```

A date as ``from`` is its midnight, as ``to`` the next midnight (the day is included); a time as
``to`` is excluded; times are in ``[attribution] tz``. An empty printer books every printer of the
site. ``#`` lines are comments. Every error names the file, the line, the column and the fix.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import msgspec

from common.configkit import ConfigError, Invalid

if TYPE_CHECKING:
    from server.inventory import Inventory


class Booking(msgspec.Struct, frozen=True):
    site: str
    printer: str  # "" = every printer of the site
    start_ms: int
    end_ms: int
    customer: str
    line: int


def instant(text: str, zone: ZoneInfo, key: str, end: bool = False) -> int:
    """ms of a date (its midnight; with ``end`` the next midnight: the day is included) or a time."""
    try:
        if "T" in text or " " in text.strip():
            moment = datetime.fromisoformat(text.strip())
            moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
            return int(moment.timestamp() * 1000)
        day = date.fromisoformat(text.strip()) + timedelta(days=1 if end else 0)
    except ValueError:
        raise Invalid(key, f"{text!r} is not a date or time", "write it as 2026-08-15 or 2026-08-15T13:00") from None
    return int(datetime.combine(day, time(0), zone).timestamp() * 1000)


BOOKING_COLUMNS = ("site", "printer", "from", "to", "customer")


def load(inv: "Inventory", path: Path) -> list[Booking]:
    """Read and check the bookings CSV; errors name the file, line and column, and the fix."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            lines = list(csv.reader(fh))
    except FileNotFoundError:
        raise ConfigError("attribution.bookings", f"{path} does not exist",
                          "create it (columns site,printer,from,to,customer) or remove the key") from None
    except (OSError, UnicodeError, csv.Error) as exc:
        raise ConfigError("attribution.bookings", f"cannot read {path} ({exc})",
                          "write a UTF-8 CSV file with the header site,printer,from,to,customer") from None
    header = [h.strip() for h in lines[0]] if lines else []
    missing = [c for c in BOOKING_COLUMNS if c not in header]
    if missing:
        raise ConfigError("attribution.bookings", f"{path} lacks the column(s) {', '.join(missing)}",
                          "start the file with the header line site,printer,from,to,customer")
    out = [_booking(inv, dict(zip(header, row)), n, path) for n, row in enumerate(lines[1:], start=2)
           if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]  # blank, comment
    _check_overlaps(out, path)
    return out


def _booking(inv: "Inventory", row: dict, line: int, path: Path) -> Booking:
    def fail(column: str, problem: str, fix: str):
        return ConfigError(f"attribution.bookings: line {line}: {column}", problem, fix, str(path))

    site, printer, customer = (row.get(k, "").strip() for k in ("site", "printer", "customer"))
    if site not in inv.sites:
        raise fail("site", f"site {site!r} is not defined", "use a site ID from [sites] of the inventory")
    entry = inv.printers.get(printer)
    if printer and (entry is None or entry.site != site):
        raise fail("printer", f"printer {printer!r} is not at site {site!r}",
                   "use a printer ID of that site, or leave it empty to book the whole site")
    if customer not in inv.customers:
        raise fail("customer", f"customer {customer!r} is not defined", "use a customer ID from [customers]")
    try:
        start = instant(row.get("from") or "", inv.attribution.zone, "from")
        end = instant(row.get("to") or "", inv.attribution.zone, "to", end=True)
    except Invalid as exc:
        column, problem, fix = str(exc).split("\x1f")
        raise fail(column, problem, fix) from None
    if end <= start:
        raise fail("to", "is not after from", "write an end after the start (a date as end includes that day)")
    return Booking(site, printer, start, end, customer, line)


def _check_overlaps(bookings: list[Booking], path: Path) -> None:
    """Refuse two bookings of different customers that overlap on one printer (a whole-site
    booking covers every printer of its site). One sweep per site in start order: O(n log n)."""
    by_site: dict[str, list[Booking]] = {}
    for b in bookings:
        by_site.setdefault(b.site, []).append(b)
    for items in by_site.values():
        items.sort(key=lambda b: b.start_ms)
        everyone, whole, per_printer = _Reach(), _Reach(), {}
        for b in items:
            mine = per_printer.setdefault(b.printer, _Reach()) if b.printer else whole
            earlier = [everyone] if not b.printer else [whole, mine]
            a = next(filter(None, (reach.conflict(b) for reach in earlier)), None)
            if a is not None:
                raise ConfigError(f"attribution.bookings: line {b.line}", f"overlaps line {a.line} "
                                  f"with another customer ({a.customer} and {b.customer})",
                                  "make the bookings of one printer not overlap", str(path))
            everyone.add(b)
            mine.add(b)


class _Reach:
    """Of the bookings seen so far (in start order), the one that ends last, and the one that ends
    last among those of another customer than it: all a later booking can overlap with."""

    __slots__ = ("first", "second")

    def __init__(self):
        self.first: Booking | None = None
        self.second: Booking | None = None

    def add(self, b: Booking) -> None:
        first = self.first
        if first is None or b.end_ms > first.end_ms:
            if first is not None and first.customer != b.customer:
                self.second = first
            self.first = b
        elif b.customer != first.customer and (self.second is None or b.end_ms > self.second.end_ms):
            self.second = b

    def conflict(self, b: Booking) -> Booking | None:
        """A booking seen so far of another customer that is still running when ``b`` starts."""
        first = self.first
        if first is None:
            return None
        other = first if first.customer != b.customer else self.second
        return other if other is not None and other.end_ms > b.start_ms else None


def merged(bookings: list[Booking]) -> dict[tuple[str, str], list[Booking]]:
    """Per (site, printer), by start, overlapping bookings joined (overlaps are of one customer:
    load refuses others), so the one before a time is the only one that can hold it."""
    out: dict[tuple[str, str], list[Booking]] = {}
    for b in sorted(bookings, key=lambda b: b.start_ms):
        items = out.setdefault((b.site, b.printer), [])
        if items and b.start_ms < items[-1].end_ms:
            items[-1] = msgspec.structs.replace(items[-1], end_ms=max(items[-1].end_ms, b.end_ms))
        else:
            items.append(b)
    return out
