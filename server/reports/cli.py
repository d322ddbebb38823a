"""``printfarm-server report``: one report now, or ``--schedule`` to run the configured cron job."""

from __future__ import annotations

import argparse
import sys
import time

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
        # Here, not at the top: ``printfarm-server run`` imports this module for its options only.
        from server.reports import generate
        people = generate.people_for(cfg, args.users)
    except ConfigError as exc:
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2
    except (periods.PeriodError, ValueError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    return _one(cfg, inventory, period, formats, out, lang, rcfg, people, not args.no_progress)


def _one(cfg, inventory, period, formats, out, lang, rcfg, people, show_progress) -> int:
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
                report = make_report(client_for(cfg), inventory, period, grace_s=rcfg.silence_after, progress=step,
                                     people=people, ahead=ahead)
            except InfluxError as exc:
                print(f"report: cannot read InfluxDB at {redact(cfg.influx.url)}: {exc}", file=sys.stderr)
                return 1
            report.network_name = rcfg.network_name
            paths = write_files(report, formats, out, lang, progress=step, ahead=ahead)
    for path in paths:
        print(path)
    print(f"{len(paths)} file(s) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
