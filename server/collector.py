"""Wires the collector together: MQTT -> Ingest -> (fleet state, InfluxDB writer, listeners)."""

from __future__ import annotations

import logging
import time

from server import inventory as inventory_mod
from server import alerts as alerts_mod
from server import rollups as rollups_mod
from server.api import Api
from server.config import ConfigError, ServerConfig
from server.live import AgentState, LiveFleet
from server.ingest import Ingest
from server.metrics import Metrics
from server.mqtt import Acknowledgements, Subscriber
from server.privacy import UserNames
from server import retention
from server.store import layout, tenants
from server.store.influx import BatchWriter, InfluxError, InfluxHTTP, rows
from server.store.spool import Spool

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.metrics = Metrics()
        self.inventory = inventory_mod.load(cfg.inventory)
        self.fleet = LiveFleet(self.inventory)
        ic = cfg.influx
        # With [retention] telemetry set, telemetry and the rest go to retention policies of their own.
        client = layout.RoutedInflux if cfg.retention.routed else InfluxHTTP
        self.influx = client(ic.url, ic.database, ic.username, ic.password, ic.token, ic.timeout, self.metrics)
        self.influx.create_missing = ic.create_database
        # [influx] layout = "organisations": a database per organisation (server/store/tenants.py)
        self.tenants = tenants.Tenants(self.influx, self.inventory, cfg) if ic.layout == "organisations" else None
        if self.tenants:
            self.influx.make_database = self.tenants.make
        self._org_bursts: dict[str, list[str]] = {}  # per organisation's database, like _burst
        self.spool = Spool(ic.spool_dir, ic.spool_max_bytes)
        # The acknowledgement handshake (server/mqtt/acks.py): the MQTT loop tracks each delivery
        # with the writer, and the writer acknowledges it once its points are durable.
        self.acks = Acknowledgements()
        self.rollups = None
        self.writer = BatchWriter(self.influx, ic.batch_size, ic.flush_interval, spool=self.spool,
                                  max_batch_bytes=ic.max_batch_bytes, acknowledge=self._durable)
        self.users = UserNames.from_config(cfg.privacy, cfg.state_dir)
        # Ingest's lines gather per read of the socket and go to the writer in one go: a lock
        # per line would cost as much as building the line.
        self._burst: list[str] = []
        self.ingest = Ingest(self.inventory, self.fleet, self._burst.append, metrics=self.metrics,
                             reject_unlisted=cfg.ingest.reject_unlisted, max_unlisted=cfg.ingest.max_unlisted,
                             users=self.users,
                             routes=tenants.routes(self.tenants, self._burst.append, self._org_bursts) if self.tenants else None)
        self.subscriber = Subscriber(cfg.mqtt, self.ingest.handle, acknowledgements=self.acks, flush=self.writer.flush,
                                     end_of_burst=self._hand_burst_to_writer,
                                     track=self.writer.track if cfg.mqtt.ack_after_write else None,
                                     metrics=self.metrics)
        self.api = self._api(cfg) if cfg.http.enabled else None
        # Alerts listen to every accepted message; sending happens on their own threads.
        alert_write = tenants.alert_writer(self.tenants, self.writer.put) if self.tenants else self.writer.put
        self.alerts = alerts_mod.from_server_config(cfg, alert_write, self.metrics, self.inventory)
        if self.alerts:
            self.ingest.listeners.append(self.alerts.on_message)
            if self.api:
                self.api.routes["/api/alerts"] = self.alerts.api_route
        # Rollups hear of every accepted message, to recompute hours that late data changes.
        self.rollups = rollups_mod.from_server_config(cfg, self.inventory, self.writer, self.spool, self.metrics)
        if self.rollups:
            self.ingest.listeners.append(self.rollups.marks.on_message)
        self.metrics.gauge("queue_depth", self.writer.pending)
        self.metrics.gauge("spool_bytes", lambda: self.spool.bytes)
        self.metrics.gauge("spool_batches", lambda: len(self.spool))
        raw_names_in = (tenants.clients_for(self.influx, tenants.detail_databases(ic.database, self.inventory))
                        if self.tenants else self.influx)
        self.purge = (retention.HourlyPurge(raw_names_in, self.users.pseudonyms, cfg.privacy.raw_user_days, time.time)
                      if cfg.privacy.raw_user_days > 0 else None)
        self.started = time.time()

    def _api(self, cfg: ServerConfig) -> Api:
        try:
            return Api(cfg.http.host, cfg.http.port, self.fleet, self.health, self.metrics, cfg.http.allowed_hosts)
        except OSError as exc:  # a port in use, or a host this machine does not have
            raise ConfigError("http", f"cannot listen on {cfg.http.host}:{cfg.http.port} ({exc.strerror or exc})",
                              "stop what holds that port, or set [http] port (or host) to one that is free") from None

    def _hand_burst_to_writer(self) -> None:
        self.ingest.end_burst()
        if self._org_bursts:  # per organisation: all of a burst's databases under one lock
            self.writer.put_many(self._burst, more=self._org_bursts)
            self._burst.clear()
            for lines in self._org_bursts.values():
                lines.clear()
        elif self._burst:
            self.writer.put_many(self._burst)
            self._burst.clear()
        if self.rollups:
            self.rollups.marks.end_burst()  # the burst's lines are in the writer: its marks count

    def start(self) -> None:
        """Start everything but the MQTT loop, which ``run`` drives on the calling thread."""
        if self.cfg.influx.create_database:
            try:
                if self.tenants:
                    self.tenants.ensure_all()
                else:
                    self.influx.create_database()
                    layout.ensure(self.influx, self.cfg.retention)
            except InfluxError as exc:
                log.warning("could not create database %r yet (%s); writes will retry", self.cfg.influx.database, exc)
        self._remember_agents()
        self.writer.start()
        key_line = retention.key_line(self.users.pseudonyms, int(time.time() * 1000))
        for db in self.tenants.databases() if self.tenants else [None]:
            self.writer.put(key_line, None if db == self.cfg.influx.database else db)
        if self.purge:
            self.purge.start()
        if self.alerts:
            self.alerts.start()
        if self.rollups:
            self.rollups.prime()
            self.rollups.start()
        if self.api:
            self.api.start()

    def _remember_agents(self) -> None:
        """Each agent's last stored state. The broker sends a retained last-will again on every
        subscription (and redelivers one a crash left unacknowledged); ingest dates a will by
        its arrival, so without this a restart would store the same loss a second time."""
        try:
            found = rows(self.influx.query(f'SELECT last("state") AS "state", "dropped" FROM {layout.long("agent")} '
                                           'GROUP BY "agent"'))
        except InfluxError as exc:
            log.warning("could not read the agents' last state (%s): a retained last-will may be stored again", exc)
            return
        for row in found:
            self.fleet.agents.setdefault(row["agent"], AgentState(row["agent"], row["state"], row["time"],
                                                                  row.get("dropped") or 0))

    def run(self) -> None:
        """The MQTT loop, on the calling thread, until ``stop`` (or a signal) ends it."""
        self.subscriber.run()

    def stop(self) -> None:
        """Stop reading, flush what was read into InfluxDB, then close."""
        if self.rollups:
            self.rollups.stop()
        self.subscriber.stop()
        if self.purge:
            self.purge.stop()
        if self.alerts:
            self.alerts.stop()  # before the writer, so its last points are flushed too
        self.writer.stop()
        self.subscriber.close()  # acknowledge what is durable now, then a clean DISCONNECT
        if self.api:
            self.api.stop()
        log.info("collector stopped; %d points written", self.writer.written)

    def _durable(self, tokens: list) -> None:
        if self.rollups:
            tokens = self.rollups.barrier.pick(tokens)  # the rollups' write barrier rides along
        if tokens:
            self.acks.acknowledge(tokens)

    def health(self) -> dict:
        return {
            "ok": self.subscriber.connected and self.writer.last_error is None,
            "mqtt_connected": self.subscriber.connected,
            "influx_error": self.writer.last_error,
            "queue_depth": self.writer.pending(),
            "spool_batches": len(self.spool),
            "spool_bytes": self.spool.bytes,
            "uptime_s": round(time.time() - self.started, 1),
            "rollups": self.rollups.status() if self.rollups else None,
        }
