"""Wires the collector together: MQTT -> Ingest -> (fleet state, InfluxDB writer, listeners)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from server import inventory as inventory_mod
from server.config import ServerConfig
from server.live import AgentState, LiveFleet
from server.ingest import Ingest
from server.metrics import Metrics
from server.mqtt import Acknowledgements, Subscriber
from server.privacy import UserNames
from server import retention
from server.store import layout, tenants
from server.subsystems import Subsystems
from server.store.influx import BatchWriter, InfluxError, InfluxHTTP, rows
from server.store.spool import Spool

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.metrics = Metrics()
        self.inventory = inventory_mod.load(cfg.inventory)
        self.fleet = LiveFleet(self.inventory)
        # The optional subsystems (server/subsystems.py) hook in here: a listener per accepted
        # message, a hook after each burst reached the writer, a filter on durable tokens, routes.
        self.burst_hooks: list[Callable[[], None]] = []
        self.durable_filters: list[Callable[[list], list]] = []
        self.routes: dict = {}
        ic = cfg.influx
        # With [retention] telemetry set, telemetry and the rest go to retention policies of their own.
        client = layout.RoutedInflux if cfg.retention.routed else InfluxHTTP
        self.influx = client(ic.url, ic.database, ic.username, ic.password, ic.token, ic.timeout, self.metrics)
        self.influx.create_missing = ic.create_database
        # [influx] layout = "organisations": a database per organisation (server/store/tenants.py)
        self.tenants = tenants.Tenants(self.influx, self.inventory, cfg) if ic.layout == "organisations" else None
        if self.tenants:
            self.influx.make_database = self.tenants.make
        # per organisation: like _burst, the lines for the organisations' databases, and the database of each
        self._routed: tuple[list[str], list[str]] = ([], [])
        self.spool = Spool(ic.spool_dir, ic.spool_max_bytes)
        # The acknowledgement handshake (server/mqtt/acks.py): the MQTT loop tracks each delivery
        # with the writer, and the writer acknowledges it once its points are durable.
        self.acks = Acknowledgements()
        self.writer = BatchWriter(self.influx, ic.batch_size, ic.flush_interval, spool=self.spool,
                                  max_batch_bytes=ic.max_batch_bytes, acknowledge=self._durable)
        self.users = UserNames.from_config(cfg.privacy, cfg.state_dir)
        # Ingest's lines gather per read of the socket and go to the writer in one go: a lock
        # per line would cost as much as building the line.
        self._burst: list[str] = []
        # On a NATS cluster each collector stores its share of the stream but follows every
        # message for its live state and alerts (server/jetstream.py): two ingests then, the
        # storing one with a fleet of its own (it needs one to date agents' wills).
        self.split_live = bool(cfg.nats.servers and cfg.nats.live)
        self.ingest = Ingest(self.inventory, LiveFleet(self.inventory) if self.split_live else self.fleet,
                             self._burst.append, metrics=self.metrics,
                             reject_unlisted=cfg.ingest.reject_unlisted, max_unlisted=cfg.ingest.max_unlisted,
                             users=self.users,
                             routes=tenants.routes(self.tenants, self._burst.append, *self._routed) if self.tenants else None)
        # The ingest whose listeners (alerts) hear every message, and whose fleet the API shows.
        self.live_ingest = self.ingest
        if self.split_live:
            self.live_ingest = Ingest(self.inventory, self.fleet, lambda line: None, metrics=Metrics(),
                                      reject_unlisted=cfg.ingest.reject_unlisted,
                                      max_unlisted=cfg.ingest.max_unlisted, users=self.users)
        self.lease = None
        if cfg.nats.servers and cfg.nats.alert_lease:
            from server.nats_lease import AlertLease
            self.lease = AlertLease(cfg.nats.alert_lease, replicas=min(3, len(cfg.nats.servers)))
        self.subscriber = self._subscriber(cfg)
        self.metrics.gauge("queue_depth", self.writer.pending)
        self.metrics.gauge("spool_bytes", lambda: self.spool.bytes)
        self.metrics.gauge("spool_batches", lambda: len(self.spool))
        self.databases_made = False  # start() made every database, policy and reader (or they were there)
        self.subsystems = Subsystems(self)
        self.started = time.time()

    def _subscriber(self, cfg: ServerConfig):
        """MQTT, or a NATS cluster's JetStream stream when [nats] servers are set."""
        options = dict(acknowledgements=self.acks, flush=self.writer.flush, end_of_burst=self._hand_burst_to_writer,
                       track=self.writer.track if cfg.mqtt.ack_after_write else None, metrics=self.metrics)
        if cfg.nats.servers:
            from server.jetstream import JetStreamSubscriber  # nats-py only where it is used
            live = self._follow if self.split_live else None
            return JetStreamSubscriber(cfg.nats, self.ingest.handle, live=live, lease=self.lease, **options)
        return Subscriber(cfg.mqtt, self.ingest.handle, **options)

    def _follow(self, topic: str, payload: bytes) -> None:
        self.live_ingest.handle(topic, payload)
        self.live_ingest.end_burst()

    # The subsystems by name, for tests and tools: None when the config leaves one off.
    @property
    def api(self):
        return self.subsystems.get("http")

    @property
    def alerts(self):
        return self.subsystems.get("alerts")

    @property
    def rollups(self):
        return self.subsystems.get("rollups")

    def _hand_burst_to_writer(self) -> None:
        self.ingest.end_burst()
        if self._routed[0]:  # per organisation: all of a burst's databases under one lock
            self.writer.put_many(self._burst, routed=self._routed)
            self._burst.clear()
            self._routed[0].clear()
            self._routed[1].clear()
        elif self._burst:
            self.writer.put_many(self._burst)
            self._burst.clear()
        for hook in self.burst_hooks:
            hook()

    def start(self) -> None:
        """Start everything but the MQTT loop, which ``run`` drives on the calling thread."""
        if self.cfg.influx.create_database:
            try:
                if self.tenants:
                    self.tenants.ensure_all()
                else:
                    self.influx.create_database()
                    layout.ensure(self.influx, self.cfg.retention)
                self.databases_made = True
            except InfluxError as exc:
                log.warning("could not create database %r yet (%s); writes will retry", self.cfg.influx.database, exc)
        self._remember_agents()
        self.writer.start()
        key_line = retention.key_line(self.users.pseudonyms, int(time.time() * 1000))
        for db in self.tenants.databases() if self.tenants else [None]:
            self.writer.put(key_line, None if db == self.cfg.influx.database else db)
        self.subsystems.start()

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
            if self.split_live:  # the storing ingest's own fleet dates the wills
                self.ingest.fleet.agents.setdefault(row["agent"], AgentState(row["agent"], row["state"], row["time"],
                                                                             row.get("dropped") or 0))
            self.fleet.agents.setdefault(row["agent"], AgentState(row["agent"], row["state"], row["time"],
                                                                  row.get("dropped") or 0))

    def run(self) -> None:
        """The MQTT loop, on the calling thread, until ``stop`` (or a signal) ends it."""
        self.subscriber.run()

    def stop(self) -> None:
        """Stop reading, flush what was read into InfluxDB, then close."""
        self.subsystems.stop("first")
        self.subscriber.stop()
        self.subsystems.stop("before_writer")
        self.writer.stop()
        self.subscriber.close()  # acknowledge what is durable now, then a clean DISCONNECT
        self.subsystems.stop("last")
        log.info("collector stopped; %d points written", self.writer.written)

    def _durable(self, tokens: list) -> None:
        for pick in self.durable_filters:
            tokens = pick(tokens)
        if tokens:
            self.acks.acknowledge(tokens)

    def health(self) -> dict:
        return {
            "ok": self.subscriber.ready and self.writer.last_error is None,
            "mqtt_connected": self.subscriber.ready,  # and subscribed: what it publishes now arrives
            "influx_error": self.writer.last_error,
            "queue_depth": self.writer.pending(),
            "spool_batches": len(self.spool),
            "spool_bytes": self.spool.bytes,
            "uptime_s": round(time.time() - self.started, 1),
            **(self.lease.health() if self.lease else {}),
            **self.subsystems.health(),
        }
