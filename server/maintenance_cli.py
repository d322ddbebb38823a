"""``printfarm-server maintenance record PRINTER --note TEXT`` and ``maintenance status``
(docs/maintenance.md): record a service durably in InfluxDB, and list each printer's counters
since its last service and what is due, in at most 100 columns."""

from __future__ import annotations

import argparse
import sys
import time

from common.urls import redact
from server import maintenance
from server.store import tenants
from server.store.influx import InfluxError, InfluxHTTP

USAGE = "maintenance record PRINTER --note TEXT | maintenance status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("maintenance (record PRINTER | status)")
    group.add_argument("--note", help="maintenance record: what was done, e.g. 'new nozzle, belts tensioned'")


def run(cfg, inventory, args) -> int:
    verb, *rest = args.names or [""]
    ic = cfg.influx
    client = InfluxHTTP(ic.url, ic.database, ic.username, ic.password, ic.token, max(ic.timeout, 30.0))
    try:
        if verb == "record" and len(rest) == 1:
            return record(cfg, inventory, client, rest[0], args.note)
        if verb == "status" and not rest:
            return status(cfg, inventory, client)
    except InfluxError as exc:
        print(f"maintenance: InfluxDB at {redact(ic.url)}: {exc}; nothing was recorded" if verb == "record"
              else f"maintenance: InfluxDB at {redact(ic.url)}: {exc}", file=sys.stderr)
        return 1
    print(f"usage: printfarm-server {USAGE}", file=sys.stderr)
    return 2


def record(cfg, inventory, client, printer: str, note: str | None) -> int:
    entry = inventory.printers.get(printer)
    if entry is None:
        print(f"maintenance record: printer {printer!r} is not in the inventory: use a [printers.<id>] ID",
              file=sys.stderr)
        return 2
    if not note or not note.strip():
        print("maintenance record: --note is missing: say what was done, e.g. --note 'new nozzle'", file=sys.stderr)
        return 2
    now = int(time.time() * 1000)
    databases = [cfg.influx.database]
    if cfg.influx.layout == "organisations":  # the network's (counters, alerts) and the organisation's
        databases.append(tenants.org_database(cfg.influx.database, inventory.org_of_site[entry.site]))
    line = maintenance.service_line(inventory, entry.site, printer, note, now)
    maintenance.record(client, databases, line, now, entry.site, printer)
    print(f"recorded a service of {printer} ({entry.site}) at "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(now / 1000))}: counters start again from 0")
    return 0


HEADER = f"{'printer':<16} {'site':<12} {'last serv.':<10} {'hours':>7} {'jobs':>5} {'filament':>8}  due"
DUE_AT = len(HEADER) - 3  # the due column: one reason a line, the further ones below


def status(cfg, inventory, client) -> int:
    found = maintenance.states(client, inventory, cfg.rollups.enabled, int(time.time() * 1000))
    print(HEADER)
    for s in found:
        print(row(s))
    due = sum(1 for s in found if s.due)
    print(f"{len(found)} printer(s), {due} due for service")
    return 0


def row(s: maintenance.ServiceState) -> str:
    """One printer, at most 100 columns a line: IDs are cut, each further due reason is a line below."""
    last = time.strftime("%Y-%m-%d", time.gmtime(s.last_service_ms / 1000)) if s.last_service_ms else "never"
    c = s.counters
    if s.interval is None:
        due = ["no interval"]
    else:
        due = ["DUE: " + reason for reason in s.due] if s.due else ["ok (" + limits(s.interval) + ")"]
    head = f"{s.printer[:16]:<16} {s.site[:12]:<12} {last:<10} {c.hours:>7.1f} {c.jobs:>5} {c.filament_m:>7.0f}m  "
    lines = [head + due[0]] + [" " * DUE_AT + more for more in due[1:]]
    return "\n".join(line if len(line) <= 100 else line[:99] + "…" for line in lines)


def limits(i) -> str:
    parts = [f"{i.service_hours:g} h" if i.service_hours else "", f"{i.service_jobs} jobs" if i.service_jobs else "",
             f"{i.service_months} mo" if i.service_months else ""]
    return ", ".join(p for p in parts if p)
