"""Hourly utilisation rollups: the reports' own accounting, cut into hours and kept in InfluxDB.

Per printer and hour: milliseconds printing, paused, idle, in error, offline, without data
(unknown) and before its first data, plus hours in the network and available, tagged with
printer, site, organisation and county, and split by the customer of the job under way (tags
customer and customer_kind, ``customers.CustomerSplit``), in ``"rollups"."utilisation"``, so
Grafana sums exactly what a report of the same period counts. They run inside the collector (``job.RollupJob``): every hour
is rolled up once it has ended, the hour under way is updated on every run, and data that arrives
late for an hour already rolled up marks that printer dirty (``dirty.DirtyMarks``) and gets its
hours recomputed on the next run. docs/rollups.md has the design, the lag and the retention.
"""

from __future__ import annotations

from pathlib import Path


def from_server_config(cfg, inventory, writer, spool=None, metrics=None, made=lambda: False):
    """The collector's RollupJob (with its write barrier as ``.barrier``), or None if disabled.
    ``made()``: True when the collector has made every database and policy itself at start; the
    job's first run then does not make them again (per organisation ~70 queries, ~0.07 CPU-s)."""
    if not cfg.rollups.enabled:
        return None
    from server.reports import config as reports_config
    from server.rollups.customers import split_for
    from server.rollups.dirty import DirtyMarks
    from server.rollups.durable import WriteBarrier
    from server.rollups.job import RollupJob
    from server.store import layout
    from server.store.influx import client_for

    ic = cfg.influx
    client = client_for(cfg)  # its own connections: a long query waits at least 60 s
    make = (lambda: layout.ensure(client, cfg.retention)) if ic.create_database else (lambda: None)
    sources, store = where(cfg, inventory, client)
    if ic.layout == "organisations" and ic.create_database:
        from server.store.tenants import Tenants
        make = Tenants(client, inventory, cfg).ensure_all  # every database it reads must exist

    def prepare() -> None:
        if not made():  # not already by the collector's start
            make()

    grace_s = reports_config.load(cfg.reports).silence_after  # the report's rule for "still reporting"
    return RollupJob(client, inventory, cfg.rollups, prepare=prepare, metrics=metrics, marks=DirtyMarks(bursts=True),
                     barrier=WriteBarrier(writer, spool, timeout=ic.flush_interval + ic.timeout + 5),
                     state_path=Path(cfg.state_dir) / "rollups.json", grace_ms=int(grace_s * 1000),
                     split=split_for(cfg, inventory, client, sources), sources=sources, store=store)


def where(cfg, inventory, client):
    """(what the rollups read, where they write) for the server config's layout: with one
    database, that one; per organisation, every organisation's detail (an admin reads them all at
    once), each point into the network's database and its organisation's (docs/organisations.md)."""
    from server.reports.query import HERE, Sources
    from server.rollups.store import RollupStore
    from server.store import tenants

    if cfg.influx.layout != "organisations":
        return HERE, RollupStore(client)
    network = cfg.influx.database
    databases = tenants.detail_databases(network, inventory)

    def place(site: str) -> tuple:
        return None, tenants.org_database(network, inventory.org_of_site.get(site, tenants.UNLISTED))
    return Sources(tuple(databases)), RollupStore(client, place)
