"""How long the collector takes to read a bookings file of 16,000 rows (target: ≤ 1 s).

    python bench/bookings_load.py [--rows 16000] [--pairwise]

Writes a bookings CSV where every row overlaps ~1,300 others (month-long bookings starting every
~33 minutes over a year, one customer per printer): the
shape that made the pairwise overlap check quadratic (3.7 s for 16k rows at every start). Times
``server.bookings.load`` (reading, checking every cell, the overlap check) and, with
``--pairwise``, the old check of every overlapping pair on the same rows, for comparison. Exit
code 1 when the load takes more than 1 s; the clock also shows the time since the process started.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

START = time.perf_counter()

from server import bookings, inventory  # noqa: E402

TARGET_S = 1.0
PRINTERS = 20


def _inventory(base: Path):
    return inventory.from_dict({
        "sites": {"lab": {"organisation": "Bench", "county": "Örebro"}},
        "printers": {f"p{n}": {"site": "lab"} for n in range(PRINTERS)},
        "customers": {f"c{n}": {"name": f"Customer {n}", "kind": "company", "size": "small_medium", "county": "Örebro"}
                      for n in range(PRINTERS)},
    }, "fleet.toml", base=base)


def _write(path: Path, rows: int) -> None:
    first = datetime(2026, 1, 1)
    step = timedelta(days=365) / rows
    lines = ["site,printer,from,to,customer"]
    for n in range(rows):
        start = first + n * step
        printer = n % PRINTERS
        lines.append(f"lab,p{printer},{start:%Y-%m-%dT%H:%M},{start + timedelta(days=30):%Y-%m-%dT%H:%M},c{printer}")
    path.write_text("\n".join(lines) + "\n")


def _pairwise(items: list[bookings.Booking]) -> int:
    """The check before the sweep: every pair that overlaps in time, compared."""
    compared = 0
    items = sorted(items, key=lambda b: b.start_ms)
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if b.start_ms >= a.end_ms:
                break
            compared += 1
            if a.customer != b.customer and (not a.printer or not b.printer or a.printer == b.printer):
                raise AssertionError("the bench's rows must not clash")
    return compared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=16_000)
    parser.add_argument("--pairwise", action="store_true", help="also time the old pairwise check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bookings.csv"
        _write(path, args.rows)
        inv = _inventory(Path(tmp))
        t0 = time.perf_counter()
        loaded = bookings.load(inv, path)
        took = time.perf_counter() - t0
    print(f"bookings.load: {len(loaded)} rows in {took:.3f} s "
          f"({time.perf_counter() - START:.3f} s since the process started); target ≤ {TARGET_S} s")
    if args.pairwise:
        t0 = time.perf_counter()
        compared = _pairwise(loaded)
        print(f"old pairwise check alone: {compared:,} pairs compared in {time.perf_counter() - t0:.3f} s")
    return 0 if took <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
