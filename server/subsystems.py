"""The collector's optional subsystems: one lifecycle (start, stop, health), one registry.

The core of the collector (MQTT reader, ingest, InfluxDB writer) always runs; everything else is
a subsystem, built from the config by a factory in ``REGISTRY`` (None when the config leaves it
off), like Moonraker's components. A factory gets the collector and hooks its subsystem in
through the collector's public hooks: ``ingest.listeners`` (every accepted message),
``burst_hooks`` (after a burst's lines reached the writer), ``durable_filters`` (tokens the writer
made durable) and ``routes`` (HTTP paths; the HTTP API, built last, serves them). Adding a
subsystem is one factory and one line in ``REGISTRY``.

Subsystems start in registry order, after the writer and before the MQTT loop. ``stop_stage``
says when the collector stops one (in reverse registry order within a stage):

- ``"first"``: before reading stops — a subsystem that may be waiting for a burst under way;
- ``"before_writer"``: after reading stopped, before the writer's last flush — its last points
  are written too;
- ``"last"``: after the writer's last flush — the HTTP API answers /healthz until then.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Literal, Protocol

from server import alerts as alerts_mod
from server import retention
from server import rollups as rollups_mod
from server.config import ConfigError
from server.store import tenants

if TYPE_CHECKING:
    from server.collector import Collector

log = logging.getLogger(__name__)

Stage = Literal["first", "before_writer", "last"]
STAGES: tuple[Stage, ...] = ("first", "before_writer", "last")


class Subsystem(Protocol):
    stop_stage: Stage

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict | None: ...


Factory = Callable[["Collector"], "Subsystem | None"]


def alerts(c: "Collector"):
    """Alerts hear every accepted message; they send on their own threads."""
    # With a database per organisation, an alert about a printer goes to its organisation's.
    write = tenants.alert_writer(c.tenants, c.writer.put) if c.tenants else c.writer.put
    engine = alerts_mod.from_server_config(c.cfg, write, c.metrics, c.inventory)
    if engine:
        c.live_ingest.listeners.append(engine.on_message)  # every message, also beside other collectors
        c.routes["/api/alerts"] = engine.api_route
        if c.lease:  # one of several collectors sends (server/nats_lease.py)
            engine.gate = c.lease.gate
    return engine


def maintenance(c: "Collector"):
    """Service counters read every few minutes for the service_due alert (docs/maintenance.md)."""
    from server import maintenance_watch
    return maintenance_watch.from_collector(c)


def rollups(c: "Collector"):
    """Rollups hear every accepted message, to recompute the hours late data changes; their
    write barrier rides along the writer's acknowledgements."""
    job = rollups_mod.from_server_config(c.cfg, c.inventory, c.writer, c.spool, c.metrics, lambda: c.databases_made)
    if job:
        c.ingest.listeners.append(job.marks.on_message)
        c.burst_hooks.append(job.marks.end_burst)  # the burst's lines are in the writer: its marks count
        c.durable_filters.append(job.barrier.pick)
    return job


def purge(c: "Collector"):
    """Raw user names older than ``[privacy] raw_user_days`` deleted every hour."""
    days = c.cfg.privacy.raw_user_days
    # with a database per organisation, raw names are in the organisations' databases only
    where = tenants.clients_for(c.influx, tenants.detail_databases(c.cfg.influx.database, c.inventory)) \
        if c.tenants else c.influx
    return retention.HourlyPurge(where, c.users.pseudonyms, days, time.time) if days > 0 else None


def http_api(c: "Collector"):
    """Built last, so it serves the routes the other subsystems registered."""
    from server.access import Access, organisation_ids
    from server.api import Api
    from server.directory import Directory
    from server.tokens import TokenFile, path_for

    http = c.cfg.http
    if not http.enabled:
        return None
    access = Access(TokenFile(path_for(c.cfg)), organisation_ids(c.inventory), http.public)
    try:
        api = Api(http.host, http.port, c.fleet, c.health, c.metrics, http.allowed_hosts, access=access,
                  directory=Directory(c.inventory, c.fleet))
    except OSError as exc:  # a port in use, or a host this machine does not have
        raise ConfigError("http", f"cannot listen on {http.host}:{http.port} ({exc.strerror or exc})",
                          "stop what holds that port, or set [http] port (or host) to one that is free") from None
    api.routes.update(c.routes)
    return api


# Start order. Stop order is by each subsystem's stop_stage (module docstring).
REGISTRY: dict[str, Factory] = {
    "purge": purge,
    "alerts": alerts,
    "maintenance": maintenance,
    "rollups": rollups,
    "http": http_api,
}


class Subsystems:
    """The subsystems the config turned on, by registry name."""

    def __init__(self, host: "Collector", registry: dict[str, Factory] = REGISTRY):
        self.names = list(registry)
        self.on: dict[str, Subsystem] = {}
        for name, factory in registry.items():
            made = factory(host)
            if made is not None:
                self.on[name] = made

    def get(self, name: str) -> Subsystem | None:
        return self.on.get(name)

    def start(self) -> None:
        for sub in self.on.values():
            sub.start()

    def stop(self, stage: Stage) -> None:
        for sub in reversed(list(self.on.values())):
            if sub.stop_stage == stage:
                sub.stop()

    def health(self) -> dict:
        """Each registered name: its subsystem's health, or None when the config left it off."""
        return {name: (self.on[name].health() if name in self.on else None) for name in self.names}
