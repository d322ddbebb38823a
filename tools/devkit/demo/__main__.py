"""``printfarm-demo``: Mosquitto, InfluxDB, a simulated fleet, agents and the collector, with a
live fleet table. Ctrl-C (or ``q``) stops everything and writes a utilisation report; ``r``
writes one without stopping."""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from contextlib import contextmanager
from pathlib import Path

from devkit.demo import services
from devkit.demo.report import write_report
from devkit.demo.roster import DEMO_OUTAGE_SITE, demo_fleet
from devkit.demo.stack import Stack, StackOptions
from devkit.demo.table import render, summary_line

log = logging.getLogger("printfarm.demo")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="printfarm-demo", description=__doc__)
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="the simulated fleet's random seed")
    parser.add_argument("--start", default="09:00", help="simulated start: HH:MM local time today (default 09:00)")
    parser.add_argument("--interval", type=float, default=2.0, help="agent poll interval, seconds (default 2)")
    parser.add_argument("--minutes", type=float, help="stop by itself after this many real minutes")
    parser.add_argument("--install", action="store_true", help="apt-get install Mosquitto and InfluxDB if missing")
    parser.add_argument("--report-dir", default="printfarm-demo-report", help="where the final report goes")
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.add_argument("--workdir", help="keep data, logs and configs here (default: a temp folder, removed)")
    parser.add_argument("--cluster", action="store_true",
                        help="a three-node NATS cluster instead of one Mosquitto (docs/scaling.md)")
    parser.add_argument("--plain", action="store_true", help="print a summary line every few seconds, no table")
    return parser.parse_args(argv)


def ensure_services(install: bool) -> bool:
    missing = services.missing_packages()
    if not missing:
        return True
    command = services.install_command(missing)
    if not install:
        print(f"printfarm-demo needs {', '.join(missing)}. Install with:\n\n    {' '.join(command)}\n\n"
              "or run printfarm-demo --install to let it do that.", file=sys.stderr)
        return False
    print("installing:", " ".join(command), file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(command, env=env).returncode != 0 or services.missing_packages():
        print("installation failed; install the packages above by hand", file=sys.stderr)
        return False
    return True


@contextmanager
def keys_pressed():
    """Yield a function returning the keys typed since the last call ('' if stdin is no tty)."""
    if not sys.stdin.isatty():
        yield lambda: ""
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield lambda: os.read(fd, 64).decode(errors="ignore") if select.select([fd], [], [], 0)[0] else ""
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not ensure_services(args.install):
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="printfarm-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    options = StackOptions(speed=args.speed, seed=args.seed, start=args.start, interval=args.interval,
                           outages=[f"{DEMO_OUTAGE_SITE}:15:20"], customers=True, cluster=args.cluster)
    stack = Stack(workdir, demo_fleet(), options)
    started = time.time()
    try:
        stack.up(lambda text: print(f"printfarm-demo: {text}", flush=True))
        print(f"printfarm-demo: fleet status page http://127.0.0.1:{stack.http_port}/  "
              f"(InfluxDB {stack.influx_url}, MQTT 127.0.0.1:{stack.broker_port})", flush=True)
        org, token = stack.organisation_token()
        print(f"printfarm-demo: every printer's state shows without a token; sign in at "
              f"http://127.0.0.1:{stack.http_port}/login with {token} to see {org}'s in full", flush=True)
        show = _plain if args.plain or not sys.stdout.isatty() else _table
        show(stack, args, stop, started)
    finally:
        print("printfarm-demo: stopping", flush=True)
        try:
            if not args.no_report and stack.http_port:
                _report(stack, args, started)
        finally:
            stack.down()
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    print("printfarm-demo: stopped; nothing left running", flush=True)
    return 0


def _until(args, started: float) -> float:
    return started + args.minutes * 60 if args.minutes else float("inf")


def _plain(stack: Stack, args, stop: threading.Event, started: float) -> None:
    while not stop.is_set() and time.time() < _until(args, started):
        fleet = stack.fleet_state() or {}
        print(f"printfarm-demo: t={time.time() - started:.0f}s {summary_line(fleet)}", flush=True)
        _check_children(stack)
        stop.wait(5)


def _table(stack: Stack, args, stop: threading.Event, started: float) -> None:
    from rich.live import Live

    footer = (f"status page http://127.0.0.1:{stack.http_port}/   r = write report now   q / Ctrl-C = stop "
              f"(writes the report to {args.report_dir}/)")
    with keys_pressed() as keys, Live(refresh_per_second=2, screen=False, auto_refresh=False) as live:
        while not stop.is_set() and time.time() < _until(args, started):
            pressed = keys()
            if "q" in pressed:
                break
            if "r" in pressed:
                _report(stack, args, started)
            fleet = stack.fleet_state() or {}
            header = (f"printfarm demo — {len(fleet.get('printers', []))} simulated printers in "
                      f"{len({p['site'] for p in fleet.get('printers', [])})} sites; simulated time "
                      f"{stack.sim_time()} (×{args.speed:g}); running {time.time() - started:.0f} s")
            live.update(render(fleet, header, footer, width=live.console.width), refresh=True)
            _check_children(stack)
            stop.wait(1)


def _check_children(stack: Stack) -> None:
    for name, code in stack.children.dead():
        log.warning("%s exited with code %s; see %s", name, code, stack.dir / "logs")


def _report(stack: Stack, args, started: float) -> None:
    paths = write_report(stack.dir / "collector.toml", Path(args.report_dir))
    for path in paths:
        print(f"printfarm-demo: report {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
