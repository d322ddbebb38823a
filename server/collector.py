"""Wires the collector together: MQTT -> Ingest -> (fleet state, InfluxDB writer, listeners)."""

from __future__ import annotations

import logging
import time

from server import inventory as inventory_mod
from server import metrics
from server.api import Api
from server.config import ServerConfig
from server.fleet import Fleet
from server.ingest import Ingest
from server.mqtt import Subscriber
from server.store.influx import BatchWriter, InfluxError, InfluxHTTP

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.inventory = inventory_mod.load(cfg.inventory)
        self.fleet = Fleet(self.inventory)
        ic = cfg.influx
        self.influx = InfluxHTTP(ic.url, ic.database, ic.username, ic.password, ic.token, ic.timeout)
        self.writer = BatchWriter(self.influx, ic.batch_size, ic.flush_interval)
        self.ingest = Ingest(self.inventory, self.fleet, self.writer.put)
        self.subscriber = Subscriber(cfg.mqtt, self.ingest.handle)
        self.api = Api(cfg.http.host, cfg.http.port, self.fleet, self.health) if cfg.http.enabled else None
        metrics.gauge("queue_depth", self.writer.queue.qsize)
        self.started = time.time()

    def start(self) -> None:
        """Start everything but the MQTT loop, which ``run`` drives on the calling thread."""
        if self.cfg.influx.create_database:
            try:
                self.influx.create_database()
            except InfluxError as exc:
                log.warning("could not create database %r yet (%s); writes will retry", self.cfg.influx.database, exc)
        self.writer.start()
        if self.api:
            self.api.start()
        self.subscriber.connect()

    def run(self) -> None:
        self.subscriber.loop_forever()

    def stop(self) -> None:
        """Stop reading, flush what was read into InfluxDB, then close."""
        self.subscriber.disconnect()
        self.writer.stop()
        if self.api:
            self.api.stop()
        log.info("collector stopped; %d points written", self.writer.written)

    def health(self) -> dict:
        return {
            "ok": self.subscriber.connected and self.writer._last_error is None,
            "mqtt_connected": self.subscriber.connected,
            "influx_error": self.writer._last_error,
            "queue_depth": self.writer.queue.qsize(),
            "uptime_s": round(time.time() - self.started, 1),
        }
