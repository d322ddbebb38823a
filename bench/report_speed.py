"""How long a quarterly and a yearly report take for 100 printers over a year (targets: a quarter ≤ 10 s, the
year ≤ 8 s, issue 23).

    python bench/report_speed.py [--printers 100] [--year 2025] [--hz-days 1] [--every 900] [--data DIR]

Starts its own influxd in a temporary folder and writes, straight to /write in batches of 10,000
line-protocol points (progress bars):

- a whole year of state changes and job events for every printer: 0-5 jobs a day of 20 min to 3 h,
  ~15 % failed or cancelled (with their progress), each end with its material per tool as the
  collector stores it (measured or slicer, one to two tools, one job in ten without; PLA, PETG and
  ABS priced, TPU not, a machine-hour rate and a start fee: the cost sheets cost every job), some pauses, offline nights on 3 printers in 10, an agent restart
  (a gap in the data, then a state point with prev_state "none") about once a fortnight;
- telemetry as the agent sends it (one point per poll), but not at 1 Hz all year: 1 Hz x 100
  printers x 1 year is 3.15 billion points, days of writing on this machine. The last ``--hz-days``
  days of the year hold 1 Hz telemetry for every printer (the stretch the report's ``last()``
  look-ups read at the period's end), the rest of the year one point every ``--every`` seconds.
  The report never reads telemetry in bulk, only ``last()`` over the windows between a printer's
  last state change and an agent restart or the period's end, so its cost does not grow with the
  telemetry rate outside those windows (the output prints how much of each was written).

Then it times, for each quarter and the year: reading + accounting (``make_report``, with the
customer view on: every job attributed through an inventory of 60 customers, accounts per site
with changes from a date, ~10 % of file names tagged, a booking per printer and month; and the
previous period read and accounted too, for the key figures and who is new; and the job events
since the project's start, which starts with the data on 1 January, for the funder's indicators
since the start: a quarter's report reads every job event from January up to the quarter, in the
child that reads the previous period; and the maintenance section: service intervals on every
printer, each one's hours, jobs and filament counted since its first data) and writing XLSX, CSV,
the PDF and the one-page summary, and prints the network's figures and the machine load. As
``printfarm-server report`` does it, the XLSX is written ahead: a child forked as soon as the job
events are read and the job list made writes the job sheet and the job list's CSV (``xlsx_ahead``), so "read+accounting"
includes the fork and "XLSX+CSV+PDF" is what is left after it; the total is timed from the call's start. Exit
code 1 when a quarter takes more than 10 s or the year more than 8 s (wall, from the call's start). Caveat printed with the figures: the year before the
data (2024) is empty, so the yearly report's previous period costs little here; a year compared
with a full previous year reads twice as much (see docs/reports.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


import psutil
from tqdm import tqdm

from common import protocol
from common.pseudonyms import Pseudonyms
from server import inventory as inventory_mod
from server import lineproto
from server.store import layout
from server.reports import periods
from server.reports.generate import make_report, write_files, xlsx_ahead
from server.reports.people import People
from server.store.influx import InfluxHTTP
from devkit.servers import InfluxDB

DB = "printfarm"
BATCH = 10_000
S, MIN, H, DAY = 1000, 60_000, 3_600_000, 86_400_000
TARGETS_S = {"quarter": 10.0, "year": 8.0}  # wall seconds, per kind of period
COUNTIES = ("Örebro", "Västmanland", "Uppsala", "Södermanland", "Östergötland", "Värmland", "Dalarna", "Gävleborg")
KINDS = (("company", "micro"), ("company", "small"), ("company", "medium"), ("company", "large"), ("academia", None),
         ("public", None), ("association", None))
CUSTOMERS = 60


def fleet(n: int, year: int = 2025, bookings: Path | None = None) -> inventory_mod.Inventory:
    sites = {f"site-{i:02d}": {"name": f"Lab {i}", "organisation": f"Organisation {i % 5}",
                               "county": COUNTIES[i % len(COUNTIES)]}
             for i in range(max(1, n // 10))}
    names = sorted(sites)
    printers = {f"p{i:03d}": {"site": names[i % len(names)], "model": "MK4"} for i in range(n)}
    customers = {f"cust-{c:02d}": {"name": f"Customer {c}", "kind": KINDS[c % len(KINDS)][0],
                                   **(_company(c, year) if KINDS[c % len(KINDS)][1] else {}),
                                   "county": COUNTIES[c % len(COUNTIES)]} for c in range(CUSTOMERS)}
    # Users 1-15 of each site belong to customers, half of them move to another one in July;
    # users 16-20 belong to no one.
    accounts = [{"site": site, "user": f"user{u}", "customer": f"cust-{(s * 7 + u) % CUSTOMERS:02d}"}
                for s, site in enumerate(names) for u in range(1, 16)]
    accounts += [{"site": site, "user": f"user{u}", "customer": f"cust-{(s * 3 + u) % CUSTOMERS:02d}",
                  "from": f"{year}-07-01"} for s, site in enumerate(names) for u in range(1, 16, 2)]
    for i, site in enumerate(sites.values()):  # two organisations in five are universities (RCO10)
        if i % 5 < 2:
            site["organisation_kind"] = "research"
    # The project starts with the data: a quarter's indicators read every job event since January.
    project = {"start": f"{year}-01-01", "end": f"{year + 1}-12-31", "targets": {"RCO01": 40, "RCO05": 8}}
    # Every printer has service intervals: the report's maintenance section counts each one's hours,
    # jobs and filament since its last service (none recorded here: since its first data).
    upkeep = {"models": {"MK4": {"service_hours": 500, "service_jobs": 400, "service_months": 6}}}
    # Priced materials and machine hours: the billing, cost and outcome sheets cost every job.
    materials = {kind: {"price_per_kg": price} for kind, price in (("PLA", 250), ("PETG", 280), ("ABS", 300))}
    rates = {"currency": "SEK", "hour_rate": 90, "start_fee": 20}
    data = {"sites": sites, "printers": printers, "customers": customers, "attribution": {"accounts": accounts},
            "project": project, "maintenance": upkeep, "materials": materials, "rates": rates}
    if bookings is not None:
        rows = [f"{printers[p]['site']},{p},{year}-{m:02d}-10,{year}-{m:02d}-12,cust-{(i + m) % CUSTOMERS:02d}"
                for i, p in enumerate(sorted(printers)) for m in range(1, 13)]
        bookings.write_text("site,printer,from,to,customer\n" + "\n".join(rows) + "\n")
        data["attribution"]["bookings"] = bookings.name
    return inventory_mod.from_dict(data, base=bookings.parent if bookings else None)


def _company(c: int, year: int) -> dict:
    """A company's size, registration (some new in the year) and organisation number (Luhn-checked)."""
    nine = f"5566{c:05d}"
    total = sum(d - 9 if d > 9 else d for d in (int(ch) * (2 if i % 2 == 0 else 1) for i, ch in enumerate(nine)))
    return {"size": KINDS[c % len(KINDS)][1], "registered": f"{year - 1 - c % 6}-0{1 + c % 9}-15",
            "org_number": f"{nine[:6]}-{nine[6:]}{(10 - total % 10) % 10}"}


class Printer:
    """One printer's year: state points, job events and gaps in its data."""

    def __init__(self, pid: str, tags: str, rng: random.Random):
        self.pid, self.tags, self.rng = pid, tags, rng
        self.states: list[tuple[int, str, str]] = []  # (ts, state, prev_state)
        self.jobs: list[str] = []  # line protocol
        self.gaps: list[tuple[int, int]] = []  # (last data, next session start)
        self.state = "idle"
        self.offline_nights = rng.random() < 0.3

    def go(self, ts: int, state: str, session_start: bool = False) -> None:
        prev = "none" if session_start else self.state
        if state != self.state or session_start:
            self.states.append((ts, state, prev))
        self.state = state

    def job(self, kind: str, ts: int, **fields) -> None:
        pairs = [("count", 1), ("file", fields.get("file")), ("user", fields.get("user")),
                 ("duration", fields.get("duration")), ("filament_mm", fields.get("filament_mm")),
                 ("job_started", fields.get("job_started"))]
        body = ",".join(f"{k}={v}i" if isinstance(v, int) else f"{k}={v!r}" if isinstance(v, float)
                        else f'{k}="{v}"' for k, v in pairs if v is not None)
        self.jobs.append(f"job{self.tags},kind={kind} {body} {ts}")

    def day(self, midnight: int) -> None:
        rng = self.rng
        if rng.random() < 1 / 14:  # agent restart at ~03:00: no data for 10-90 min
            last = midnight + 3 * H
            start = last + rng.randint(10, 90) * MIN
            self.gaps.append((last, start))
            self.go(start, self.state, session_start=True)
        if self.offline_nights:
            self.go(midnight + 7 * H, "idle")
        t = midnight + 7 * H + 30 * MIN + rng.randint(0, 90) * MIN
        for _ in range(rng.randint(0, 5)):
            length = rng.randint(20, 180) * MIN
            if t + length > midnight + 20 * H + 30 * MIN:
                break
            self.print_job(t, length)
            t += length + rng.randint(10, 120) * MIN
        if self.offline_nights:
            self.go(midnight + 21 * H, "offline")

    def print_job(self, start: int, length: int) -> None:
        rng, end = self.rng, start + length
        user, file = f"user{rng.randint(1, 20)}", f"part-{rng.randint(1, 500)}.gcode"
        if rng.random() < 0.1:  # a tagged file name
            file = f"part-{rng.randint(1, 500)} [cust-{rng.randint(0, CUSTOMERS - 1):02d}].gcode"
        self.go(start, "printing")
        self.job("started", start, user=user, file=file)
        if rng.random() < 0.1:
            self.go(start + length // 3, "paused")
            self.go(start + length // 3 + 15 * MIN, "printing")
        outcome = rng.choices(("done", "failed", "cancelled"), (85, 10, 5))[0]
        fields = dict(user=user, file=file, job_started=start, duration=length / 1000,
                      filament_mm=float(rng.randint(500, 40_000)))
        if outcome == "done":
            self.go(end - 2 * MIN, "finishing")
            self.go(end, "idle")
        elif outcome == "failed":
            self.go(end, "error")
            self.go(end + 20 * MIN, "idle")
        else:
            self.go(end, "cancelling")
            self.go(end + 30 * S, "idle")
        progress = 100.0 if outcome == "done" else float(rng.randint(5, 95))
        self.jobs.append(lineproto.event(protocol.Event(
            v=protocol.SCHEMA_VERSION, ts=end, printer=self.pid, site="-", seq=1, kind=outcome, progress=progress,
            material=self.material(fields["filament_mm"]), **fields), self.tags))

    def material(self, mm: float) -> list[protocol.MaterialUse]:
        """As the collector stores an end event's material (server/lineproto.py): one tool mostly, two
        now and then, none in ten (an OctoPrint without a type: the job is not weighed); TPU unpriced."""
        rng = self.rng
        tools = rng.choices((0, 1, 2), (10, 80, 10))[0]
        source = rng.choice(("measured", "slicer"))
        return [protocol.MaterialUse(source, tool=t, type=rng.choices(("PLA", "PETG", "ABS", "TPU"), (60, 25, 10, 5))[0],
                                     grams=round(mm / tools / 1000 * 2.98, 2), mm=round(mm / tools, 2))
                for t in range(tools)]

    def state_lines(self) -> list[str]:
        return [f'state{self.tags} state="{s}",prev_state="{p}",seq=1i {ts}' for ts, s, p in self.states]

    def telemetry(self, start: int, end: int, step: int):
        """Telemetry timestamps in [start, end) every ``step`` ms, none inside gaps, one at each gap's start."""
        gaps = [(a, b) for a, b in self.gaps if b > start and a < end]
        cuts = sorted({a for a, _ in gaps if start <= a < end})
        ts, g = start, 0
        while ts < end:
            while g < len(gaps) and gaps[g][1] <= ts:
                g += 1
            if g < len(gaps) and gaps[g][0] < ts < gaps[g][1]:
                ts = gaps[g][1]
                continue
            yield ts
            ts += step
        yield from cuts  # the last data before each restart, exactly


def write_all(client: InfluxHTTP, lines, total: int, desc: str) -> int:
    batch, written = [], 0
    with tqdm(total=total, desc=desc, unit="pt", unit_scale=True, file=sys.stderr) as bar:
        for line in lines:
            batch.append(line)
            if len(batch) >= BATCH:
                client.write("\n".join(batch).encode())
                written += len(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            client.write("\n".join(batch).encode())
            written += len(batch)
            bar.update(len(batch))
    return written


def populate(client: InfluxHTTP, inv, year: int, hz_days: float, every_s: int) -> dict:
    start = periods.year(year).start_ms
    end = periods.year(year).end_ms
    hz_from = end - int(hz_days * DAY)
    rng = random.Random(42)
    printers = []
    for pid, entry in sorted(inv.printers.items()):
        p = Printer(pid, lineproto.tag_set(inv.tags(entry.site, pid)), rng)
        p.go(start - H, "idle", session_start=True)  # in the network since before the year
        for day in range(start, end, DAY):
            p.day(day)
        printers.append(p)
    events = [line for p in printers for line in p.state_lines() + p.jobs]
    counts = {"state": sum(len(p.states) for p in printers), "job": sum(len(p.jobs) for p in printers),
              "restarts": sum(len(p.gaps) for p in printers)}
    counts["events_written"] = write_all(client, events, len(events), "state+job events")

    def telemetry(t0, t1, step):
        for p in printers:
            for seq, ts in enumerate(p.telemetry(t0, t1, step)):
                yield f'telemetry{p.tags} state="x",seq={seq}i {ts}'

    slow_total = len(printers) * ((hz_from - start) // (every_s * S) + 1)
    counts["telemetry_sparse"] = write_all(client, telemetry(start - H, hz_from, every_s * S), slow_total,
                                           f"telemetry 1/{every_s}s")
    fast_total = len(printers) * (end - hz_from) // S
    counts["telemetry_1hz"] = write_all(client, telemetry(hz_from, end + 5 * MIN, S), fast_total,
                                        f"telemetry 1 Hz, last {hz_days} day(s)")
    counts["hz_from"] = datetime.fromtimestamp(hz_from / 1000, timezone.utc).isoformat()
    return counts


def cpu_seconds(influxd) -> tuple[float, float]:
    """CPU used so far by this process (all threads) + its reaped children, and by influxd."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = influxd.cpu_times()
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
            server.user + server.system)


def bench_period(client, inv, period, out: Path, now_ms: int, influxd) -> dict:
    cpu0 = cpu_seconds(influxd)
    t0 = time.perf_counter()
    people = People(Pseudonyms("report-bench-secret-0123456789"))
    formats = ["xlsx", "csv", "pdf", "summary"]
    with xlsx_ahead(period, formats, out, "en") as ahead:  # as `printfarm-server report` does
        report = make_report(client, inv, period, now_ms=now_ms, people=people, ahead=ahead)
        t1 = time.perf_counter()
        write_files(report, formats, out, "en", ahead=ahead)
    t2 = time.perf_counter()
    cpu1 = cpu_seconds(influxd)
    network = report.groupings["network"][0]
    return {"period": period.label, "read+account s": t1 - t0, "files s": t2 - t1, "total s": t2 - t0,
            "cpu report": cpu1[0] - cpu0[0], "cpu influxd": cpu1[1] - cpu0[1],
            "queries": report.queries, "printing h": network["printing_h"], "util period": network["util_period"],
            "util available": network["util_available"], "unknown h": network["unknown_h"],
            "offline h": network["offline_h"], "jobs started": network["jobs_started"],
            "done": network["jobs_done"], "failed": network["jobs_failed"],
            "cancelled": network["jobs_cancelled"], "job rows": len(report.jobs),
            "customers": len(report.customers.served()), "unattributed": report.customers.unattributed_jobs,
            "previous jobs": report.previous.groupings["network"][0]["jobs_started"] if report.previous else 0,
            "indicators": {r["indicator"]: (r["period"], r["cumulative"]) for r in report.indicators.rows()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--printers", type=int, default=100)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--hz-days", type=float, default=1.0, help="days of 1 Hz telemetry at the end of the year")
    ap.add_argument("--every", type=int, default=900, help="telemetry interval (s) for the rest of the year")
    ap.add_argument("--data", help="keep the database in this folder and reuse it on the next run "
                                   "(same options), instead of a temporary one")
    args = ap.parse_args()
    print(__doc__.split("\n\n", 1)[1])  # the method, with the figures
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp, \
            InfluxDB(Path(args.data or tmp) / "influxdb") as server:
        inv = fleet(args.printers, args.year, Path(tmp) / "bookings.csv")
        client = InfluxHTTP(server.url, DB, timeout=300)
        client.create_database()
        layout.ensure(client, layout.RetentionConfig())  # the retention policies a collector makes at its start
        started = time.perf_counter()
        marker = Path(args.data or tmp) / f"populated-v3-{args.printers}-{args.year}-{args.hz_days}-{args.every}.json"
        if marker.exists():
            counts = json.loads(marker.read_text())
            print("\nreusing the database in", args.data)
        else:
            counts = populate(client, inv, args.year, args.hz_days, args.every)
            marker.write_text(json.dumps(counts))
        print(f"\nIn InfluxDB ({time.perf_counter() - started:.0f} s to write), {args.printers} printers, "
              f"year {args.year}:")
        print(f"  state points {counts['state']:,}, job events {counts['job']:,}, "
              f"agent restarts {counts['restarts']:,}")
        print(f"  telemetry: {counts['telemetry_sparse']:,} points at 1/{args.every} s for the year up to "
              f"{counts['hz_from']}, then {counts['telemetry_1hz']:,} points at 1 Hz ({args.hz_days} day(s))")
        now_ms = int(time.time() * 1000)
        influxd = psutil.Process(server.pid)
        results = []
        for label in [f"{args.year}-Q{q}" for q in (1, 2, 3, 4)] + [str(args.year)]:
            results.append(bench_period(client, inv, periods.parse(label), Path(tmp) / "out", now_ms, influxd))
            r = results[-1]
            print(f"\n{r['period']}: read+accounting {r['read+account s']:.2f} s, XLSX+CSV+PDF {r['files s']:.2f} s, "
                  f"total {r['total s']:.2f} s ({r['queries']} InfluxDB requests); CPU: report "
                  f"{r['cpu report']:.2f} s, influxd {r['cpu influxd']:.2f} s; load {os.getloadavg()[0]:.2f}")
            print(f"  printing {r['printing h']:,.1f} h, utilisation {r['util period']:.2%} of period / "
                  f"{r['util available']:.2%} of available; offline {r['offline h']:,.1f} h, unknown {r['unknown h']:,.1f} h")
            print(f"  jobs started {r['jobs started']:,}, done {r['done']:,}, failed {r['failed']:,}, "
                  f"cancelled {r['cancelled']:,}; job list rows {r['job rows']:,}")
            print(f"  customers served {r['customers']}, unattributed jobs {r['unattributed']:,}; previous period: "
                  f"{r['previous jobs']:,} jobs started")
            ind = r["indicators"]
            print("  indicators (period / since the project's start): " + ", ".join(
                f"{k} {ind[k][0]} / {ind[k][1]}" for k in ("RCO01", "RCO05", "RCO10")))
        met = True
        print()
        for kind, target in TARGETS_S.items():
            mine = [r for r in results if ("-Q" in r["period"]) == (kind == "quarter")]
            worst = max(mine, key=lambda r: r["total s"])
            ok = worst["total s"] <= target
            met = met and ok
            print(f"slowest {kind}: {worst['period']} {worst['total s']:.2f} s wall, CPU {worst['cpu report']:.2f} + "
                  f"{worst['cpu influxd']:.2f} s (target ≤ {target:g} s: {'met' if ok else 'MISSED'})")
        busiest = max(results, key=lambda r: r["cpu report"] + r["cpu influxd"])
        print(f"most CPU: {busiest['period']} {busiest['cpu report'] + busiest['cpu influxd']:.2f} CPU-s "
              f"(report {busiest['cpu report']:.2f} + influxd {busiest['cpu influxd']:.2f}) — on an idle 2-core "
              f"machine the wall time is about this or less, as the two overlap")
        print(f"machine load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
              f"on {os.cpu_count()} cores")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
