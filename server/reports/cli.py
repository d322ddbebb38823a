"""``printfarm-server report``: one report now, or ``--schedule`` to run the configured cron job."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common.configkit import ConfigError
from common.urls import redact
from server.reports import config as reports_config
from server.reports import periods
from server.store.influx import InfluxError, client_for

STEPS = ("job events", "states before the period", "state changes", "gaps in data", "accounting")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("report")
    group.add_argument("--period", help="2026-07, 2026-Q3, 2026 or 2026-07-01..2026-08-15")
    group.add_argument("--format", help="comma-separated: xlsx,pdf,csv,summary (default from [reports])")
    group.add_argument("--out", help="output folder (default: [reports] out_dir)")
    group.add_argument("--lang", choices=("sv", "en"), help="label language (default from [reports])")
    group.add_argument("--tz", help="time zone of the period (default Europe/Stockholm)")
    group.add_argument("--schedule", action="store_true", help="run the [reports.schedule] cron job until stopped")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--organisation", metavar="ID",
                       help="that organisation's full report, from its own database (with [influx] layout = "
                            "\"organisations\"; without it, the network's report, which names no file and no user)")
    group.add_argument("--users", choices=("pseudonym", "hidden", "name"),
                       help="user names in the job list: pseudonym, hidden, or name (real names, where "
                            "[privacy] raw_user_days kept them; default [privacy] users)")


def check_config(cfg, source: str) -> reports_config.ReportsConfig:
    """Validate the [reports] table; raises ConfigError naming ``reports.<key>``."""
    return reports_config.load(cfg.reports, source)


def run(cfg, inventory, args) -> int:
    try:
        rcfg = reports_config.load(cfg.reports, "[reports]")
        formats = args.format.split(",") if args.format else rcfg.formats
        reports_config.check_formats_cli(formats)
        tz = args.tz or rcfg.tz
        lang = args.lang or rcfg.lang
        out = args.out or rcfg.out_dir
        if args.schedule:
            from server.reports.schedule import run_forever
            return run_forever(cfg, inventory, rcfg)
        if not args.period:
            print("report: --period is required (e.g. --period 2026-Q3)", file=sys.stderr)
            return 2
        period = periods.parse(args.period, tz)
        if period.start_ms >= time.time() * 1000:
            raise ValueError(f"{args.period} has not begun yet: nothing to report")
        inventory, scope = _scope(cfg, inventory, args.organisation)
        if args.organisation and not args.out:
            out = str(Path(out) / args.organisation)
        # Here, not at the top: ``printfarm-server run`` imports this module for its options only.
        from server.reports import generate
        people = generate.people_for(cfg, args.users)
    except ConfigError as exc:
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2
    except (periods.PeriodError, ValueError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    return _one(cfg, inventory, period, formats, out, lang, rcfg, people, not args.no_progress, scope)


def _scope(cfg, inventory, org: str | None):
    """(the inventory reported on, what to read: None for the one database, or (organisation,
    None for the network)). Raises ValueError for an organisation the report cannot be made of."""
    if cfg.influx.layout != "organisations":
        if org:
            raise ValueError("--organisation needs [influx] layout = \"organisations\" "
                             "(docs/organisations.md: printfarm-server migrate-organisations)")
        return inventory, None
    if org is None:
        return inventory, (None,)
    if org not in inventory.orgs:
        known = ", ".join(sorted(inventory.orgs)) or "none"
        raise ValueError(f"--organisation {org!r} is not in the inventory (its organisations: {known})")
    return inventory.of_organisation(org), (org,)


def sources_for(cfg, inventory, client, scope):
    """What make_report reads, and whether it shows file names and users."""
    from server.reports.query import HERE, Sources
    from server.store import tenants

    if scope is None:
        return HERE, True
    org = scope[0]
    if org is not None:
        return Sources((tenants.org_database(cfg.influx.database, org),)), True
    return Sources(tenants.existing(client, tenants.detail_databases(cfg.influx.database, inventory))), False


def _one(cfg, inventory, period, formats, out, lang, rcfg, people, show_progress, scope=None) -> int:
    from tqdm import tqdm

    from server.reports.generate import make_report, write_files, xlsx_ahead

    started = time.perf_counter()
    with tqdm(total=len(STEPS) + len(formats), desc=f"report {period.label}", unit="step",
              disable=not show_progress, file=sys.stderr) as bar:
        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)
        with xlsx_ahead(period, formats, out, lang) as ahead:
            try:
                client = client_for(cfg)
                sources, detail = sources_for(cfg, inventory, client, scope)
                report = make_report(client, inventory, period, grace_s=rcfg.silence_after, progress=step,
                                     people=people, ahead=ahead, sources=sources, detail=detail,
                                     use_rollups=cfg.rollups.enabled)
            except InfluxError as exc:
                print(f"report: cannot read InfluxDB at {redact(cfg.influx.url)}: {exc}", file=sys.stderr)
                return 1
            report.network_name = rcfg.network_name
            if scope and scope[0]:
                report.network_name = inventory.orgs[scope[0]].name
            paths = write_files(report, formats, out, lang, progress=step, ahead=ahead)
    for path in paths:
        print(path)
    print(f"{len(paths)} file(s) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
