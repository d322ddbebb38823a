"""The collector's maintenance check: every ``[alerts.rules.service_due] check_interval`` seconds
(and once at start) it reads the service counters of the printers with an interval from InfluxDB
(server/maintenance.py: one request per hundred statements), hands them to the alert engine,
whose service_due rule decides, and writes them (``service_counters``) for the Grafana panel. Off without alerts, without that rule, or without intervals.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from server import maintenance
from server.store import tenants
from server.store.influx import InfluxError, InfluxHTTP

log = logging.getLogger(__name__)

# How often the counters up to a day ago are read again in full: a check in between reads only
# the last day (cheap for any number of printers and any age of data), and data an agent sends
# more than a day late is counted within this time.
RESETTLE_MS = 6 * 3_600_000


class ServiceWatch:
    stop_stage = "before_writer"

    def __init__(self, client: InfluxHTTP, inventory, use_rollups: bool, engine: Callable[[], object],
                 write: Callable[[str], None], clock: Callable[[], float] = time.time):
        self.client, self.inventory, self.use_rollups, self.write = client, inventory, use_rollups, write
        self.engine_of, self.clock = engine, clock  # the engine is built alongside: asked for at start
        self.checks, self.due, self.last_error = 0, 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)
        self.engine = None
        self.settled: maintenance.Settled | None = None  # counters up to a day ago, re-read every few hours

    def start(self) -> None:
        self.engine = self.engine_of()
        settings = self.engine.settings.get("service_due") if self.engine else None
        if settings is None or not settings.enabled:
            log.info("maintenance: service_due alerts are off; no counters checked")
            return
        self.interval = settings.check_interval
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def health(self) -> dict:
        return {"checks": self.checks, "due": self.due, "error": self.last_error}

    def _run(self) -> None:
        while True:
            self.check()
            if self._stop.wait(self.interval):
                return

    def check(self) -> None:
        now = int(self.clock() * 1000)
        try:
            # Every listed printer, not only those with an interval: one whose interval was taken
            # out of the inventory must see its open incident clear.
            if self.settled is None or now - self.settled.at_ms >= RESETTLE_MS:
                self.settled = maintenance.settle(self.client, self.inventory, self.use_rollups, now)
            found = maintenance.states(self.client, self.inventory, self.use_rollups, now, settled=self.settled)
        except InfluxError as exc:
            if str(exc) != self.last_error:  # a repeating error logged once until it changes
                log.error("maintenance: cannot read the service counters (%s); will try again", exc)
            self.last_error = str(exc)
            return
        if self.last_error:
            log.info("maintenance: service counters readable again")
        self.last_error = None
        self.checks += 1
        self.due = sum(1 for s in found if s.due)
        self.engine.service_checked(found)
        for state in found:
            if state.interval is not None:
                self.write(maintenance.counters_line(self.inventory, state, now))


def from_collector(c) -> ServiceWatch | None:
    """None unless alerts are configured and some printer has a service interval."""
    if not c.cfg.alerts or not any(c.inventory.service_interval(p) for p in c.inventory.printers):
        return None
    ic = c.cfg.influx
    # Its own connections; the network's database holds every printer's jobs and rollups.
    client = InfluxHTTP(ic.url, ic.database, ic.username, ic.password, ic.token, ic.timeout)
    # Like the alerts' points: per organisation, into the printer's organisation's database.
    write = tenants.alert_writer(c.tenants, c.writer.put) if c.tenants else c.writer.put
    return ServiceWatch(client, c.inventory, c.cfg.rollups.enabled, lambda: c.alerts, write)
