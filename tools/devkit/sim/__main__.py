"""``python -m devkit.sim --inventory FILE --api-key-file FILE [--speed N] [--seed N] ...``

Serves one simulated printer per printer of the inventory — OctoPrint on a port of its own,
or, for printers that ``--apis`` says speak ``bambu``, MQTT reports to the broker in ``--bambu``
— and writes ``--endpoints-out`` (JSON: printer -> {url or serial, site, api}) once every port
is listening, then runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from server import inventory as inventory_mod
from devkit.sim.clock import SimClock
from devkit.sim.faces.bambu import BambuSetup
from devkit.sim.server import PrinterSpec, Simulator, plan_sites
from devkit.sim.site import LOCAL


def parse_start(text: str | None) -> float | None:
    """'HH:MM' = today at that local (Stockholm) time; a number = epoch seconds; None = now."""
    if not text:
        return None
    if ":" in text:
        hour, minute = (int(x) for x in text.split(":", 1))
        return datetime.now(LOCAL).replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    return float(text)


def parse_outage(text: str) -> tuple[str, float, float]:
    """'SITE:AFTER_MIN:MINUTES' -> (site, after, minutes)."""
    site, after, minutes = text.split(":")
    return site, float(after), float(minutes)


def build(args) -> Simulator:
    inv = inventory_mod.load(args.inventory)
    apis = json.loads(Path(args.apis).read_text()) if args.apis else {}
    specs = [PrinterSpec(pid, entry.site, entry.model, api=apis.get(pid, "octoprint"))
             for pid, entry in sorted(inv.printers.items())]
    clock = SimClock(args.speed, parse_start(args.start))
    sites = None
    if not args.manual:
        sites = plan_sites(list(inv.sites), args.seed, clock.now(), args.outages_per_day)
        for site, after, minutes in map(parse_outage, args.outage):
            if site not in sites:
                raise SystemExit(f"--outage: site {site!r} is not in the inventory")
            begin = clock.now() + after * 60
            sites[site].outages.append((begin, begin + minutes * 60))
    key = Path(args.api_key_file).read_text().strip()
    bambu = BambuSetup(**json.loads(Path(args.bambu).read_text())) if args.bambu else None
    return Simulator(specs, key, clock, seed=args.seed, auto=not args.manual, sites=sites, bambu=bambu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sim", description="Simulate a fleet of printers.")
    parser.add_argument("--inventory", required=True, help="fleet inventory TOML (sites and printers)")
    parser.add_argument("--api-key-file", required=True, help="file holding the API key every printer accepts")
    parser.add_argument("--endpoints-out", help="write printer -> {url, site, api} JSON here when listening")
    parser.add_argument("--apis", help="JSON file: printer -> the API it speaks (default octoprint)")
    parser.add_argument("--bambu", help="JSON file: {host, port, serials: {printer: serial}}, the broker "
                        "Bambu printers publish to (devkit.servers.bambu.BambuBroker's plain listener)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", help="simulated start: HH:MM local time today, or epoch seconds")
    parser.add_argument("--outage", action="append", default=[], metavar="SITE:AFTER_MIN:MINUTES",
                        help="force a network outage of a site (simulated minutes)")
    parser.add_argument("--outages-per-day", type=float, default=0.3, help="random outages per site per day")
    parser.add_argument("--manual", action="store_true", help="printers only obey API calls")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_serve(build(args), args.endpoints_out))


async def _serve(sim: Simulator, endpoints_out: str | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sim.serve()
    if endpoints_out:
        tmp = f"{endpoints_out}.tmp"
        Path(tmp).write_text(json.dumps(sim.endpoints(), indent=1))
        os.replace(tmp, endpoints_out)  # readers never see half a file
    await stop.wait()
    await sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
