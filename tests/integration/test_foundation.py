"""One real printer's life, OctoPrint -> agent -> Mosquitto -> collector -> InfluxDB."""

from __future__ import annotations

import logging
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import (
    DB, RunningCollector, agent_config_for, collector_config, start_agent, wait_for, write_inventory,
)
from devkit.servers import make_gcode
from tests.integration.job_counts import events_per_job, wait_later_telemetry

pytestmark = pytest.mark.integration

INTERVAL = 0.5


@pytest.fixture
def pipeline(tmp_path, mosquitto, influxdb):
    """Collector running against real Mosquitto and InfluxDB; yields a factory for agents."""
    inventory = write_inventory(tmp_path / "fleet.toml", {"vp-1": "lab", "vp-2": "lab"})
    cfg = collector_config(tmp_path, mosquitto, influxdb, inventory)
    collector = RunningCollector(cfg)
    collector.wait_connected()
    agents = []

    class Pipeline:
        influx = influxdb
        broker = mosquitto

        def agent(self, *octoprints, ids=("vp-1", "vp-2"), interval=INTERVAL, timeout=INTERVAL):
            printers = [(pid, op.url, op.api_key) for pid, op in zip(ids, octoprints)]
            agent = start_agent(agent_config_for(tmp_path, mosquitto, printers, interval=interval, timeout=timeout))
            agents.append(agent)
            return agent

        def rows(self, q):
            return influxdb.query(q, db=DB)

        def wait_rows(self, q, what, timeout=30, predicate=bool):
            return wait_for(lambda: (lambda r: r if predicate(r) else None)(self.rows(q)), timeout, what)

    pipeline = Pipeline()
    pipeline.pseudonyms = cfg.privacy.pseudonyms(cfg.state_dir)
    yield pipeline
    for agent in agents:
        agent.stop()
    collector.stop()


def _job_events(p, kind):
    return p.rows(f"SELECT * FROM job WHERE kind = '{kind}'")


def _states(p, printer="vp-1"):
    return [r["state"] for r in p.rows(f"SELECT state, prev_state FROM state WHERE printer = '{printer}'")]


def test_a_printed_file_becomes_telemetry_states_and_one_done_event(pipeline, octoprint):
    pipeline.agent(octoprint)
    pipeline.wait_rows("SELECT * FROM state", "the first state point")
    octoprint.upload_and_print("cube.gcode", make_gcode(300))
    done = pipeline.wait_rows("SELECT * FROM job WHERE kind = 'done'", "a done event", timeout=60)
    wait_later_telemetry(pipeline.influx, "vp-1", done[0]["seq"])  # a second done would be stored by now

    assert len(_job_events(pipeline, "done")) == 1
    assert [dict(c) for c in events_per_job(pipeline.influx).values()] == [{"started": 1, "done": 1}]
    event = done[0]
    # the OctoPrint account, stored as its pseudonym (docs/privacy.md)
    assert event["file"] == "cube.gcode" and event["user"] == pipeline.pseudonyms.of("lab", octoprint.user)
    assert event["duration"] > 2 and event["organisation"] == "Org of lab" and event["listed"] == "true"
    assert len(_job_events(pipeline, "started")) == 1

    states = [s for s in _states(pipeline) if s != "finishing"]
    assert states == ["idle", "printing", "idle"]

    printing = pipeline.rows("SELECT progress, tool0_actual, bed_actual FROM telemetry WHERE state = 'printing'")
    progress = [r["progress"] for r in printing if r["progress"] is not None]
    assert len(progress) >= 4 and progress == sorted(progress) and progress[-1] > progress[0]
    assert len({r["tool0_actual"] for r in printing}) > 2, "tool temperature should change while heating"
    tags = pipeline.rows("SHOW TAG KEYS FROM telemetry")
    assert {"printer", "site", "organisation", "county"} <= {r["tagKey"] for r in tags}


def test_a_cancel_gives_exactly_one_cancelled_event(pipeline, octoprint):
    pipeline.agent(octoprint)
    octoprint.upload_and_print("long.gcode", make_gcode(1500))
    pipeline.wait_rows("SELECT * FROM job WHERE kind = 'started'", "the started event")
    pipeline.wait_rows("SELECT * FROM telemetry WHERE progress > 0", "progress of the print")
    octoprint.cancel()
    octoprint.wait_for_state("Operational")
    cancelled = pipeline.wait_rows("SELECT * FROM job WHERE kind = 'cancelled'", "a cancelled event")
    wait_later_telemetry(pipeline.influx, "vp-1", cancelled[0]["seq"])
    assert len(_job_events(pipeline, "cancelled")) == 1
    assert not _job_events(pipeline, "done") and not _job_events(pipeline, "failed")


def test_a_printer_error_fails_the_job_once_with_its_text(pipeline, octoprint):
    pipeline.agent(octoprint)
    octoprint.upload_and_print("long.gcode", make_gcode(1500))
    pipeline.wait_rows("SELECT * FROM job WHERE kind = 'started'", "the started event")
    octoprint.command("!!DEBUG:send Error:nozzle fell off")
    failed = pipeline.wait_rows("SELECT * FROM job WHERE kind = 'failed'", "a failed event")
    wait_later_telemetry(pipeline.influx, "vp-1", failed[0]["seq"])
    assert len(_job_events(pipeline, "failed")) == 1
    assert "nozzle fell off" in failed[0]["error"]
    errors = pipeline.rows("SELECT * FROM state WHERE state = 'error'")
    assert errors and "nozzle fell off" in errors[0]["error"]


def test_a_stopped_octoprint_is_unreachable_within_two_intervals_and_recovers(pipeline, octoprint):
    agent = pipeline.agent(octoprint)
    pipeline.wait_rows("SELECT * FROM state WHERE state = 'idle'", "idle")
    stopped_ms = int(time.time() * 1000)
    octoprint.stop()
    rows = pipeline.wait_rows("SELECT * FROM state WHERE state = 'unreachable'", "unreachable", timeout=10)
    assert rows[0]["time"] - stopped_ms <= 2 * INTERVAL * 1000
    octoprint.start()
    pipeline.wait_rows(f"SELECT * FROM state WHERE state = 'idle' AND time > {stopped_ms}ms", "idle again")
    assert agent.scheduler.running


def test_two_printers_are_independent_and_a_hung_one_delays_nothing(pipeline, octoprint_factory):
    first, second = octoprint_factory(), octoprint_factory()
    pipeline.agent(first, second)
    pipeline.wait_rows("SELECT * FROM telemetry WHERE printer = 'vp-2'", "vp-2 telemetry")
    second.sigstop()
    try:
        hung_ms = int(time.time() * 1000)
        pipeline.wait_rows(f"SELECT * FROM state WHERE printer = 'vp-2' AND state = 'unreachable'",
                           "vp-2 unreachable", timeout=10)
        pipeline.wait_rows(f"SELECT seq FROM telemetry WHERE printer = 'vp-1' AND time > {hung_ms}ms",
                           "vp-1 polls while vp-2 hangs", predicate=lambda rows: len(rows) >= 6)
    finally:
        second.sigcont()
    times = [r["time"] for r in pipeline.rows(
        f"SELECT seq FROM telemetry WHERE printer = 'vp-1' AND time > {hung_ms}ms")]
    assert len(times) >= 5
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) <= INTERVAL * 1000 * 1.6, f"vp-1 was delayed while vp-2 hung: gaps {gaps}"


def test_an_unlisted_printer_is_stored_and_flagged(pipeline):
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(pipeline.broker.host, pipeline.broker.port)
    client.loop_start()
    msg = protocol.Telemetry(v=1, ts=int(time.time() * 1000), printer="stranger", site="elsewhere", seq=1,
                             state="idle")
    client.publish(protocol.printer_topic("elsewhere", "stranger", "telemetry"), protocol.encode(msg), qos=1).wait_for_publish(5)
    client.loop_stop()
    rows = pipeline.wait_rows("SELECT * FROM telemetry WHERE printer = 'stranger'", "the stranger's point")
    assert rows[0]["listed"] == "false" and rows[0]["county"] == "unknown"


def test_api_keys_never_reach_the_logs(pipeline, octoprint, caplog, tmp_path):
    with caplog.at_level(logging.DEBUG):
        agent = pipeline.agent(octoprint)
        pipeline.wait_rows("SELECT * FROM telemetry", "telemetry")
        octoprint.stop()
        pipeline.wait_rows("SELECT * FROM state WHERE state = 'unreachable'", "unreachable")
        agent.stop()
    assert caplog.records, "the agent should have logged something"
    assert octoprint.api_key not in caplog.text
