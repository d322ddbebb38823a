"""What a year's material and cost accounting adds to a report (one command, ~10 s):

    python bench/cost_speed.py [--printers 100] [--jobs 1000] [--target 1.5] [--lang sv]

Builds, in memory, ``--printers`` x ``--jobs`` ended jobs (a year of 100 busy printers is ~100,000),
each with one or two tools of slicer or measured material as the agents send it (JSON, as the
report reads it from InfluxDB), ~15 % failed or cancelled with an error text, customers from an
inventory with prices per material and rates per model. Times, from the process's start and for
the accounting alone: ``cost.compute`` (per job grams, metres, cost, cause) and the six sheets
in one language (``cost_tables.tables``), the way a report makes them after reading. Target:
compute + sheets <= ``--target`` seconds (the report's whole budget for a year is 8 s); prints the
figures and the machine load; exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

STARTED = time.perf_counter()

import msgspec  # noqa: E402

from common.protocol import MaterialUse  # noqa: E402
from server import inventory  # noqa: E402
from server.reports import cost, cost_tables, periods  # noqa: E402
from server.reports.build import Report  # noqa: E402
from server.reports.customer_view import Span  # noqa: E402
from server.reports.query import JobEvent  # noqa: E402

TYPES = ["PLA", "PETG", "Bambu PLA Basic", "PETG-CF", "ASA", "TPU 95A"]
ERRORS = ["Thermal Runaway", "Heater extruder not heating at expected rate", "MCU 'mcu' shutdown: Timer too close",
          "HMS_0700_2000_0002_0001: AMS assist motor overloaded", "Filament runout", None]


def fleet(printers: int) -> inventory.Inventory:
    return inventory.from_dict({
        "sites": {f"s{i}": {"organisation": f"Org {i % 8}", "county": "Örebro"} for i in range(20)},
        "printers": {f"p{i}": {"site": f"s{i % 20}", "model": ["MK4", "X1C", "Voron"][i % 3]} for i in range(printers)},
        "customers": {f"c{i}": {"kind": "company", "size": "small", "registered": 2020, "county": "Örebro",
                                "name": f"Company {i}"} for i in range(60)},
        "materials": {t: {"price_per_kg": 200 + 20 * n} for n, t in enumerate(["PLA", "PETG", "PETG-CF", "ASA"])},
        "rates": {"hour_rate": 90, "models": {"X1C": {"hour_rate": 120}}}})


def jobs(printers: int, per_printer: int, rng: random.Random) -> dict:
    out = {}
    year = periods.year(2025)
    step = (year.end_ms - year.start_ms) // per_printer
    for i in range(printers):
        mine = []
        for j in range(per_printer):
            start = year.start_ms + j * step
            hours = rng.uniform(0.3, 3)
            kind = rng.choices(["done", "failed", "cancelled"], [85, 10, 5])[0]
            tools = [MaterialUse(rng.choice(["slicer", "measured"]), tool=t, type=rng.choice(TYPES),
                                 grams=rng.uniform(5, 200), mm=rng.uniform(1000, 60000)) for t in range(rng.choice([1, 1, 2]))]
            end = JobEvent(start + int(hours * 3_600_000), f"s{i % 20}", f"p{i}", kind, duration=hours * 3600,
                           job_started=start, progress=rng.uniform(1, 99) if kind != "done" else 100.0,
                           material_use=msgspec.json.encode(tools).decode(),
                           error=rng.choice(ERRORS) if kind != "done" else None)
            customer = f"c{rng.randrange(60)}" if rng.random() < 0.7 else None
            mine.append(Span(end.site, end.printer, start, end.ts, None, None,
                             [JobEvent(start, end.site, end.printer, "started"), end], customer))
        out[(f"s{i % 20}", f"p{i}")] = mine
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--printers", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1000, help="ended jobs per printer in the year")
    ap.add_argument("--target", type=float, default=1.5, help="seconds for compute + sheets")
    ap.add_argument("--lang", default="sv", help="the sheets' language (a report is made in one)")
    args = ap.parse_args(argv)
    inv = fleet(args.printers)
    spans = jobs(args.printers, args.jobs, random.Random(23))
    made, cpu = time.perf_counter(), time.process_time()
    view = cost.compute(spans, inv)
    computed = time.perf_counter()
    report = Report(period=periods.year(2025), as_of_ms=0, usages=[], groupings={}, jobs=[], monthly=[], notes=[],
                    cost=view)
    rows = sum(len(t.rows) for t in cost_tables.tables(report, args.lang))
    done = time.perf_counter()
    took, cpu = done - made, time.process_time() - cpu
    print(f"{len(view.jobs):,} jobs: cost.compute {computed - made:.2f} s, six sheets in {args.lang} "
          f"({rows:,} rows) {done - computed:.2f} s; together {took:.2f} s wall, {cpu:.2f} s CPU (target <= {args.target} s wall); "
          f"{done - STARTED:.2f} s from process start (building the test data included)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a loaded machine reads slower)")
    if took > args.target:
        print(f"MISS: {took:.2f} s > {args.target} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
