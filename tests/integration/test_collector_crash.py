"""Criterion 3: a collector killed with SIGKILL under load and restarted loses nothing and
counts nothing twice (job events counted per job, where a duplicate would show); SIGTERM
flushes everything before the process exits."""

from __future__ import annotations

import time

import pytest

from common import protocol

from tests.integration.collector_helpers import (
    CollectorProcess, JobLoad, SteadyLoad, broker, fleet_inventory, publish_raw, settle, telemetry_points, wait_points,
)
from tests.integration.job_counts import assert_each_job_started_and_ended_once, events_per_job
from devkit.pipeline import DB, wait_for

pytestmark = pytest.mark.integration

# Batches flushed by age only, after 5 s: a kill within seconds of seeing messages buffered
# still finds them buffered, on a busy machine too.
HOLD_BATCH = {"flush_interval": 5.0, "batch_size": 50_000}


@pytest.fixture
def setup(tmp_path, influxdb):
    mqtt_broker = broker(tmp_path)
    yield tmp_path, mqtt_broker, influxdb, fleet_inventory(tmp_path, 50)
    mqtt_broker.stop()


def test_sigkill_under_load_then_restart_loses_nothing_and_counts_nothing_twice(setup):
    tmp, mqtt_broker, influx, inventory = setup
    # A long flush interval keeps many messages read but unacknowledged when the kill comes.
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory, **HOLD_BATCH).start()
    try:
        load = SteadyLoad(mqtt_broker, rate=400).start()
        before_kill = _kill_mid_batch_and_restart(collector, load, 400)
        wait_for(lambda: collector.metrics()["printfarm_messages_received"] >= 400, 20, "the restarted collector")
        published = load.stop()
        stored = wait_points(influx, published)
        markers = settle(influx, mqtt_broker, [collector])  # redeliveries, if stored twice, are in by now
        stored = telemetry_points(influx)
        received_after = collector.metrics()["printfarm_messages_received"] - markers
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
        seen = wait_for(lambda: _mid_batch(collector, 1000), 20, "1000 messages read and buffered")
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
        done = protocol.Event(v=1, ts=load.start_ms, printer="p000", site="lab", seq=1, kind="done", file="a.gcode",
                              job_started=load.start_ms - 60_000)
        event = (protocol.printer_topic("lab", "p000", "event"), protocol.encode(done))
        publish_raw(mqtt_broker, once + [event] + once + [event])
        wait_for(lambda: collector.metrics()["printfarm_points_written"] >= 22, 10, "22 points written")
        settle(influxdb, mqtt_broker, [collector])
        assert telemetry_points(influxdb) == 10
        rows = influxdb.query("SELECT sum(count) FROM job WHERE kind = 'done'", db=DB)
        assert rows[0]["sum"] == 1
        assert [dict(c) for c in events_per_job(influxdb).values()] == [{"done": 1}]
        # Positive control: the same job end under another timestamp is a second point, and
        # counting per job shows it.
        done.ts += 1
        publish_raw(mqtt_broker, [(event[0], protocol.encode(done))])
        settle(influxdb, mqtt_broker, [collector])
        assert [dict(c) for c in events_per_job(influxdb).values()] == [{"done": 2}]
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


def _mid_batch(collector, buffered: int = 50) -> dict | None:
    """The collector's metrics once it holds ``buffered`` messages read but not yet stored
    (so not acknowledged either): the middle of a batch."""
    m = collector.metrics()
    held = m["printfarm_messages_received"] - m["printfarm_points_written"]
    return m if held >= buffered else None


def _kill_mid_batch_and_restart(collector, load, backlog: int) -> dict:
    """SIGKILL while it holds messages read but not stored, let ``backlog`` more queue at the
    broker, start it again; returns its metrics from before the kill."""
    before = wait_for(lambda: _mid_batch(collector), 20, "messages read but not yet stored")
    collector.kill()
    sent = load.sent
    wait_for(lambda: load.sent >= sent + backlog, 20, "a backlog at the broker while the collector is down",
             interval=0.05)
    collector.start()
    return before


def test_a_collector_killed_mid_batch_stores_each_job_event_once(setup):
    """The redelivered job events of the killed batch are written again: each job must still
    have one started and one done point, not a second one under another timestamp."""
    tmp, mqtt_broker, influx, inventory = setup
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory, **HOLD_BATCH).start()
    try:
        load = JobLoad(mqtt_broker, rate=400).start()
        before_kill = _kill_mid_batch_and_restart(collector, load, 200)
        published = load.stop()
        if published % 2:  # the last job's end too
            publish_raw(mqtt_broker, [load.payload(published)])
            published += 1
        wait_for(lambda: len(events_per_job(influx)) >= published // 2, 60, "every job in InfluxDB", interval=0.5)
        markers = settle(influx, mqtt_broker, [collector])
        received = before_kill["printfarm_messages_received"] + collector.metrics()["printfarm_messages_received"]
    finally:
        collector.stop()
    assert received - markers > published, "the killed batch was not delivered again: no redelivery to count"
    jobs = events_per_job(influx)
    assert len(jobs) == published // 2
    assert_each_job_started_and_ended_once(jobs)


def _agent_status(state: str, ts: int, will: bool = False) -> tuple[str, bytes]:
    msg = protocol.AgentStatus(v=1, ts=ts, agent="pi-x", state=state, printers=["p000"], will=will)
    return protocol.agent_topic("pi-x"), protocol.encode(msg)


def _offline_points(influx) -> list[int]:
    return [r["time"] for r in influx.query("SELECT state FROM agent WHERE state = 'offline'", db=DB)]


def test_a_retained_last_will_is_stored_once_across_collector_restarts(setup):
    """The broker sends a retained will again to every (re)subscribing collector, and the
    collector dates a will by its arrival: a second arrival must not become a second offline."""
    tmp, mqtt_broker, influx, inventory = setup
    collector = CollectorProcess(tmp, "a", mqtt_broker, influx, inventory).start()
    try:
        connected = int(time.time() * 1000) - 60_000
        publish_raw(mqtt_broker, [_agent_status("online", connected), _agent_status("offline", connected, will=True)],
                    retain=True)
        wait_for(lambda: _offline_points(influx), 10, "the will in InfluxDB")
        collector.terminate()
        collector.start()
        collector.kill()
        collector.start()
        settle(influx, mqtt_broker, [collector])  # the retained will came before the marker
        assert len(_offline_points(influx)) == 1, "the retained will was stored again"
        # Positive control: the agent back and lost again is a new offline, and it is stored.
        again = int(time.time() * 1000)
        publish_raw(mqtt_broker, [_agent_status("online", again), _agent_status("offline", again, will=True)],
                    retain=True)
        wait_for(lambda: len(_offline_points(influx)) == 2, 10, "the second will in InfluxDB")
    finally:
        collector.stop()
