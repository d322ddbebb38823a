"""``printfarm-server purge-users`` and ``printfarm-server pseudonym`` (docs/privacy.md).

- ``purge-users [--older-than DAYS]``: delete raw user names older than DAYS (default
  ``[privacy] raw_user_days``; 0 = all of them) and pseudonymise raw names left in old points.
  Every figure stays the same (server/retention.py says why).
- ``pseudonym --site SITE NAME...``: the pseudonym of an account, e.g. to find "anna" in a report
  or to write ``[[attribution.accounts]]`` without her name.
"""

from __future__ import annotations

import argparse
import sys
import time

from server import retention
from server.store.influx import InfluxError, client_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("purge-users and pseudonym")
    group.add_argument("--older-than", type=float, metavar="DAYS",
                       help="purge-users: raw names older than this many days (default [privacy] raw_user_days)")
    group.add_argument("--site", help="pseudonym: the site whose accounts the names are")
    group.add_argument("names", nargs="*", help="pseudonym: account names")


def purge(cfg, args) -> int:
    days = cfg.privacy.raw_user_days if args.older_than is None else args.older_than
    if days < 0:
        print("purge-users: --older-than must be 0 or more days", file=sys.stderr)
        return 2
    cutoff = int(time.time() * 1000) - int(days * retention.DAY_MS)
    try:
        for client in _clients(cfg):
            done = retention.purge(client, cfg.privacy.pseudonyms(cfg.state_dir), cutoff)
            print(f"{client.database}: deleted {done.raw_deleted} raw user name(s) older than {days:g} day(s); "
                  "pseudonymised " + ", ".join(f"{n} {m} point(s)" for m, n in done.rewritten.items()))
    except InfluxError as exc:
        print(f"purge-users: cannot reach InfluxDB at {cfg.influx.url}: {exc}", file=sys.stderr)
        return 1
    return 0


def _clients(cfg) -> list:
    """The database, or with a database per organisation each one holding user names."""
    client = client_for(cfg)
    if cfg.influx.layout != "organisations":
        return [client]
    from server import inventory as inventory_mod
    from server.store import tenants
    databases = tenants.detail_databases(cfg.influx.database, inventory_mod.load(cfg.inventory))
    return tenants.clients_for(client, tenants.existing(client, databases))


def pseudonym(cfg, args) -> int:
    if not args.site or not args.names:
        print("pseudonym: give --site SITE and one or more account names", file=sys.stderr)
        return 2
    pseudonyms = cfg.privacy.pseudonyms(cfg.state_dir)
    for name in args.names:
        print(f"{pseudonyms.of(args.site, name)}\t{args.site}\t{name}")
    return 0
