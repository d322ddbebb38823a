"""What a database per organisation costs the live collector (one command, ~5 minutes):

    python bench/organisations_cost.py [--base b2d983b] [--organisations 10] [--printers 2000]
                                       [--rate 2000] [--seconds 60] [--rounds 3] [--live-layout single]

Two collectors (``python -m server run``, each its own process, started together) receive the same
live stream from one broker (bench/rollup_cost.py's: 2,000 printers polled once a second, telemetry
with a file name and a user as bench/collector_throughput.py sends it, a state change per printer
every ~5 minutes), into one InfluxDB with authentication on, both as its admin, rollups on (the
default) for both:

- ``base``: the collector of git revision ``--base`` (default: the commit issue 22 began from),
  from ``git archive``, everything into one database;
- ``live``: this checkout's, with ``[influx] layout = "organisations"``: ``--organisations``
  organisations (one a site), each telemetry line built twice (the organisation's, and the
  network's without file and user), two databases written per batch, the databases, readers and
  grants made at start.

Each one's CPU is counted from its process start to the end of the window (start-up, the live
load, the drain); ``--rounds`` fresh pairs; target: the median of the rounds' ratios live / base
<= 1.15. Prints the method and figures and the machine load; exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import urllib3

import collector_throughput as ct  # bench/ is on sys.path when run as python bench/organisations_cost.py
import rollup_cost as rc
from devkit.servers import InfluxDB, Mosquitto

ADMIN = ("admin", "admin-secret")  # authentication on: the admin the harness makes first

BASE = "b2d983b"  # main when issue 22 began (server/tenancy.py)
TARGET = 1.15
PASSWORD_ENV = "PRINTFARM_BENCH_INFLUX_PASSWORD"


def inventory(tmp: Path, fleet, organisations: int) -> Path:
    """One site per organisation, by display name, as an inventory of before names them."""
    lines = []
    for s in range(organisations):
        lines += [f"[sites.site-{s}]", f'organisation = "Organisation {s}"', 'county = "Västerbotten"', ""]
    for site, printer in fleet:
        lines += [f"[printers.{printer}]", f'site = "{site}"', 'model = "MK4"', ""]
    path = tmp / "fleet.toml"
    path.write_text("\n".join(lines))
    return path


def contenders(args, tmp: Path, broker, influx, fleet) -> dict[str, ct.Collector]:
    fleet_toml = inventory(tmp, fleet, args.organisations)
    base_src = ct.export_revision(args.base, tmp / "src-base")
    out = {"base": ct.Collector("base", base_src, tmp, broker, influx, fleet_toml),
           "live": ct.Collector("live", ct.REPO, tmp, broker, influx, fleet_toml)}
    for name, collector in out.items():
        collector.configure(f"bench_{name}")
        text = collector.config.read_text().replace(
            "[influx]\n", f'[influx]\nusername = "{ADMIN[0]}"\npassword_env = "{PASSWORD_ENV}"\n'
            + (f'layout = "{args.live_layout}"\n' if name == "live" else ""))
        collector.config.write_text(text)
    return out


def rounds(args, tmp: Path) -> list[dict]:
    os.environ[PASSWORD_ENV] = ADMIN[1]  # the collectors inherit it
    fleet = [(f"site-{i % args.organisations}", f"p{i:04d}") for i in range(args.printers)]
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=5))
    out = []
    with Mosquitto(tmp / "mosquitto", extra_conf=ct.BROKER_EXTRA) as broker, \
            InfluxDB(tmp / "influxdb", admin=ADMIN) as influx:
        collectors = contenders(args, tmp, broker, influx, fleet)
        live = rc.LiveFleet(broker, fleet, args.rate)
        try:
            for round_no in range(args.rounds):
                rc.log(f"  round {round_no + 1}: base and live side by side, {args.rate:,} msg/s for "
                       f"{args.seconds:.0f} s (load {os.getloadavg()[0]:.2f})...")
                r = rc.pair(collectors, live, args.seconds, http)
                out.append(r)
                rc.log(f"    CPU from start: live {r['live']:.2f} s, base {r['base']:.2f} s "
                       f"({(r['live'] / r['base'] - 1) * 100:+.1f} %), {r['sent']:,} messages each")
            dbs = [d["name"] for d in influx.query("SHOW DATABASES")]
            rc.log(f"  databases: {', '.join(sorted(dbs))}")
        finally:
            live.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=BASE, help="the git revision to compare with")
    ap.add_argument("--organisations", type=int, default=10)
    ap.add_argument("--printers", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--live-layout", default="organisations", choices=("organisations", "single"),
                    help="single: what this checkout costs with one database, as before")
    args = ap.parse_args()
    load = os.getloadavg()
    rc.log(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="bench-organisations-") as d:
        found = rounds(args, Path(d))
    ratios = [r["live"] / r["base"] for r in found]
    ratio = statistics.median(ratios)
    print()
    print(f"=== collectors side by side at a live {args.rate:,} msg/s, {args.printers:,} printers, "
          f"{args.organisations} organisations, {args.seconds:.0f} s, {args.rounds} rounds ===")
    print(f"    CPU from process start, live (layout {args.live_layout}) / base ({args.base}, one database): "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; median {(ratio - 1) * 100:+.1f} % "
          f"(target <= {(TARGET - 1) * 100:+.0f} %: {'met' if ratio <= TARGET else 'MISSED'})")
    for name in ("live", "base"):
        cpu = statistics.median(r[name] for r in found)
        print(f"    {name}: {cpu:.2f} CPU-s in {args.seconds:.0f} s ({cpu / args.seconds * 100:.1f} % of a core)")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs shared with other work")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
