"""Criterion 3: a collector killed with SIGKILL under load and restarted loses nothing and
counts nothing twice; SIGTERM flushes everything before the process exits."""

from __future__ import annotations

import time

import pytest

from tests.integration.collector_helpers import (
    CollectorProcess, SteadyLoad, broker, fleet_inventory, publish_raw, telemetry_points, wait_points,
)
from devkit.pipeline import DB, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(tmp_path, influxdb):
    mqtt_broker = broker(tmp_path)
    yield tmp_path, mqtt_broker, influxdb, fleet_inventory(tmp_path, 50)
    mqtt_broker.stop()


def test_sigkill_under_load_then_restart_loses_nothing_and_counts_nothing_twice(setup):
    tmp, mqtt_broker, influx, inventory = setup
    # A long flush interval keeps many messages read but unacknowledged when the kill comes.
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory, flush_interval=1.0).start()
    try:
        load = SteadyLoad(mqtt_broker, rate=400).start()
        time.sleep(2.5)
        before_kill = collector.metrics()
        collector.kill()
        time.sleep(3)  # restarted well within 30 s; the broker holds the session meanwhile
        collector.start()
        time.sleep(2)
        published = load.stop()
        stored = wait_points(influx, published)
        received_after = wait_for(lambda: collector.metrics()["printfarm_messages_received"], 5, "metrics")
    finally:
        collector.stop()
    assert stored == published, f"{published} published, {stored} points stored"
    # The killed process had read messages it never acknowledged; the broker delivered them again,
    # and the rewrite of the same point did not add one.
    received_total = before_kill["printfarm_messages_received"] + received_after
    assert received_total > published


def test_sigterm_flushes_buffered_points_before_exit(setup):
    tmp, mqtt_broker, influx, inventory = setup
    # A 30 s flush interval and big batches: under a steady stream, points wait in the buffer.
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory, flush_interval=30,
                                 batch_size=50_000).start()
    try:
        load = SteadyLoad(mqtt_broker, rate=1000).start()
        time.sleep(3)
        seen = collector.metrics()
        assert seen["printfarm_points_written"] < seen["printfarm_messages_received"], "nothing buffered"
        assert collector.terminate() == 0
        assert telemetry_points(influx) >= seen["printfarm_messages_received"]
        assert "Traceback" not in collector.log()
        # What it had not read stayed with the broker: a restart takes the rest.
        collector.start()
        published = load.stop()
        assert wait_points(influx, published) == published
    finally:
        collector.stop()


def test_a_redelivered_message_overwrites_its_point(tmp_path, influxdb):
    """Idempotent writes: the same message twice (same series, same sample time) is one point."""
    mqtt_broker = broker(tmp_path)
    collector = CollectorProcess(tmp_path, "a", mqtt_broker, influxdb, fleet_inventory(tmp_path, 5)).start()
    try:
        load = SteadyLoad(mqtt_broker)
        load.client.loop_stop()
        once = [load.payload(n) for n in range(10)]
        from common import protocol
        done = protocol.Event(v=1, ts=load.start_ms, printer="p000", site="lab", seq=1, kind="done", file="a.gcode")
        event = (protocol.printer_topic("lab", "p000", "event"), protocol.encode(done))
        publish_raw(mqtt_broker, once + [event] + once + [event])
        wait_for(lambda: collector.metrics()["printfarm_points_written"] >= 22, 10, "22 points written")
        assert telemetry_points(influxdb) == 10
        rows = influxdb.query("SELECT sum(count) FROM job WHERE kind = 'done'", db=DB)
        assert rows[0]["sum"] == 1
    finally:
        collector.stop()
        mqtt_broker.stop()


def test_collector_reconnects_after_a_broker_restart_and_keeps_its_session(setup):
    tmp, mqtt_broker, influx, inventory = setup
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory).start()
    try:
        load = SteadyLoad(mqtt_broker)
        load.client.loop_stop()
        publish_raw(mqtt_broker, [load.payload(n) for n in range(200)])
        wait_points(influx, 200)
        mqtt_broker.stop()
        wait_for(lambda: not collector.health()["mqtt_connected"], 10, "the collector to notice")
        mqtt_broker.start()  # same port, persistence on: the collector's session survives
        publish_raw(mqtt_broker, [load.payload(n) for n in range(200, 400)])  # queued in its session
        assert wait_points(influx, 400, timeout=60) == 400
        assert collector.health()["mqtt_connected"]
    finally:
        collector.stop()
