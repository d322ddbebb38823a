"""``printfarm-server rollup``: recompute the hourly rollups now, from scratch or since a date.

The collector keeps them up to date by itself; this is for a first fill without a collector, after
correcting the inventory (rollups carry organisation, county and the customer as tags, as the
reports show the current ones and attribute jobs by the current inventory), and for the
benchmark. Recomputing is idempotent: it can run beside a collector.
"""

from __future__ import annotations

import argparse
import sys
import time

from server.reports import config as reports_config
from server.reports import periods
from server.rollups.customers import split_for
from server.rollups.job import RollupJob
from server.store import layout
from server.store.influx import InfluxError, client_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rollup")
    group.add_argument("--since", help="recompute from this day (YYYY-MM-DD, in --tz) on; default: from the first data")
    group.add_argument("--until", help="recompute up to (not including) this day; default: until now")


def _day(text: str | None, tz: str | None) -> int | None:
    return periods.parse(f"{text}..{text}", tz or periods.DEFAULT_TZ).start_ms if text else None


def run(cfg, inventory, args) -> int:
    try:
        since, until = _day(args.since, args.tz), _day(args.until, args.tz)
    except periods.PeriodError as exc:
        print(f"rollup: --since/--until: {exc}", file=sys.stderr)
        return 2
    client = client_for(cfg)
    grace_s = reports_config.load(cfg.reports).silence_after
    from server.rollups import where
    sources, store = where(cfg, inventory, client)
    job = RollupJob(client, inventory, cfg.rollups, grace_ms=int(grace_s * 1000),
                    split=split_for(cfg, inventory, client, sources), sources=sources, store=store)
    started = time.perf_counter()
    try:
        if cfg.influx.create_database and cfg.influx.layout == "organisations":
            from server.store.tenants import Tenants
            Tenants(client, inventory, cfg).ensure_all()
        elif cfg.influx.create_database:
            layout.ensure(client, cfg.retention)
        points, start = job.rebuild(since, until)
    except InfluxError as exc:
        print(f"rollup: InfluxDB at {cfg.influx.url}: {exc}", file=sys.stderr)
        return 1
    if start is None:
        print("rollup: no state changes stored yet: nothing to roll up", file=sys.stderr)
        return 0
    end = "now" if until is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until / 1000))
    print(f"rolled up {time.strftime('%Y-%m-%d %H:%M', time.gmtime(start / 1000))} UTC until {end}: "
          f"{points:,} points in {time.perf_counter() - started:.1f} s")
    return 0
