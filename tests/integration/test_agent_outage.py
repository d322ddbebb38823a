"""Broker outages against real OctoPrint, Mosquitto, collector and InfluxDB: nothing is lost,
and no job is counted twice.

Every message of one printer carries the next ``seq`` (telemetry, status and job events share
the counter), so "nothing lost" is checked exactly: the stored seqs are 1..N without holes.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.service import Agent

from devkit.pipeline import (
    DB, RunningCollector, agent_config_for, collector_config, start_agent, wait_for, write_inventory,
)
from devkit.servers import make_gcode
from tests.integration.job_counts import assert_each_job_started_and_ended_once, events_per_job, wait_later_telemetry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PRINTER = "vp-1"
LONG_PRINT = make_gcode(6000)  # ~2 min on the virtual printer: outlasts the outage


@pytest.fixture
def collector(tmp_path, mosquitto, influxdb):
    inventory = write_inventory(tmp_path / "fleet.toml", {PRINTER: "lab"})
    running = RunningCollector(collector_config(tmp_path, mosquitto, influxdb, inventory))
    running.wait_connected()
    yield running
    running.stop()


def rows(influx, q):
    return influx.query(q, db=DB)


def stored_seqs(influx, printer=PRINTER) -> list[int]:
    seqs = []
    for measurement in ("telemetry", "state", "job"):
        seqs += [r["seq"] for r in rows(influx, f"SELECT seq FROM {measurement} WHERE printer = '{printer}'")]
    return sorted(seqs)


def telemetry_times(influx, since_ms: int = 0) -> list[int]:
    return [r["time"] for r in rows(influx, f"SELECT seq FROM telemetry WHERE printer = '{PRINTER}' "
                                            f"AND time >= {since_ms}ms")]


class ArrivalProbe:
    """A persistent MQTT session that records the ts of each telemetry message as it arrives."""

    def __init__(self, broker):
        self.ts: list[int] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="order-probe",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *a: c.subscribe("printfarm/v1/+/+/telemetry", 1)
        self.client.on_message = lambda c, u, m: self.ts.append(msgspec.json.decode(m.payload)["ts"])
        self.client.connect_async(broker.host, broker.port)
        self.client.loop_start()

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()

    def out_of_order(self) -> list[tuple[int, int]]:
        """(newest seen so far, older newcomer) pairs; a repeat of a seen ts is not a newcomer."""
        seen, newest, wrong = set(), 0, []
        for ts in self.ts:
            if ts not in seen and ts < newest:
                wrong.append((newest, ts))
            seen.add(ts)
            newest = max(newest, ts)
        return wrong


def now_ms() -> int:
    return int(time.time() * 1000)


def counting_polls(agent):
    """Wrap the worker's printer so the test knows how many polls happened."""
    worker = agent.workers[0]
    real, count = worker.printer.poll, [0]

    def poll():
        count[0] += 1
        return real()

    worker.printer.poll = poll
    return count


OUTAGE_POLLS = 60  # the broker stays away until this many polls are waiting in the outbox


def _outbox_telemetry(agent) -> int:
    return sum(topic.endswith("/telemetry") for _, topic, _, _ in agent.publisher.outbox.peek_batch(100_000))


def test_a_60_poll_broker_outage_during_a_print_loses_no_telemetry(tmp_path, mosquitto, influxdb, octoprint,
                                                                   collector):
    interval = 0.5
    cfg = agent_config_for(tmp_path, mosquitto, [(PRINTER, octoprint.url, octoprint.api_key)],
                           interval=interval, timeout=0.5)
    agent = Agent(cfg)
    polls = counting_polls(agent)  # before start: the first poll runs at once
    probe = ArrivalProbe(mosquitto)
    agent.start()
    try:
        octoprint.upload_and_print("long.gcode", LONG_PRINT)
        wait_for(lambda: rows(influxdb, "SELECT * FROM job WHERE kind = 'started'"), 15, "the started event")
        stopped = now_ms()
        mosquitto.stop()
        wait_for(lambda: _outbox_telemetry(agent) >= OUTAGE_POLLS, 3 * OUTAGE_POLLS * interval,
                 f"{OUTAGE_POLLS} polls in the outbox", interval=interval)
        mosquitto.start()
        restarted = now_ms()
        wait_for(lambda: telemetry_times(influxdb, restarted + 2000), 60, "live telemetry after the outage")
        agent.scheduler.shutdown(wait=True)  # no more polls: one just before stop() would wait on disk
        wait_for(lambda: agent.publisher.outbox.pending() == 0, 30, "the outbox to drain")
    finally:
        agent.stop()
        probe.stop()
    assert agent.publisher.outbox.pending() == 0
    assert len(probe.ts) >= OUTAGE_POLLS and probe.out_of_order() == [], "replayed in order, before newer polls"
    wait_for(lambda: len(telemetry_times(influxdb)) >= polls[0], 30, "every poll in InfluxDB")

    times = telemetry_times(influxdb)
    assert len(times) == polls[0], "one telemetry point per poll, no more, no less"
    seqs = stored_seqs(influxdb)
    assert seqs == list(range(1, seqs[-1] + 1)), "a message is missing"
    gaps = [b - a for a, b in zip(times, times[1:])]
    # One missed poll would show as a gap of 2 intervals; jitter of a few ms is not a gap.
    assert max(gaps) < 1.5 * interval * 1000, f"largest gap {max(gaps)} ms"
    in_outage = [t for t in times if stopped < t < restarted]
    assert len(in_outage) >= OUTAGE_POLLS - 2, "the samples of the outage arrived with their own timestamps"
    printing = rows(influxdb, f"SELECT state FROM telemetry WHERE time > {stopped}ms AND time < {restarted}ms")
    assert {r["state"] for r in printing} == {"printing"}
    octoprint.cancel()


# --- kill -9 during the outage: the agent as a real process --------------------------------------


def write_agent_toml(tmp_path: Path, broker, octoprint, interval: float, extra: str = "") -> Path:
    key = tmp_path / "key"
    key.write_text(octoprint.api_key)
    path = tmp_path / "agent.toml"
    path.write_text(f"""
log_level = "INFO"
[agent]
id = "pi-1"
site = "lab"
state_dir = "{tmp_path / 'agent-state'}"
[broker]
host = "{broker.host}"
port = {broker.port}
reconnect_min = 0.2
reconnect_max = 1.0
{extra}
[[printers]]
id = "{PRINTER}"
url = "{octoprint.url}"
api_key_file = "{key}"
interval = {interval}
timeout = {interval}
""")
    return path


def run_agent(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(config)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def outbox_rows(path: Path) -> list[tuple[str, bytes]]:
    db = sqlite3.connect(path)
    try:
        return [(t, bytes(p)) for t, p in db.execute("SELECT topic, payload FROM outbox ORDER BY id")]
    finally:
        db.close()


def test_sigkill_during_an_outage_loses_nothing_that_was_in_the_outbox(tmp_path, mosquitto, influxdb, octoprint,
                                                                      collector):
    config = write_agent_toml(tmp_path, mosquitto, octoprint, interval=0.5)
    log = tmp_path / "agent.log"
    probe = ArrivalProbe(mosquitto)
    proc = run_agent(config, log)
    try:
        octoprint.upload_and_print("long.gcode", LONG_PRINT)
        wait_for(lambda: rows(influxdb, "SELECT * FROM job WHERE kind = 'started'"), 20, "the started event")
        mosquitto.stop()
        wait_for(lambda: b"lost the broker" in log.read_bytes(), 10, "the agent to notice")
        _wait_polls(log, 12)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        committed = outbox_rows(tmp_path / "agent-state" / "outbox.sqlite3")
        killed = now_ms()
        proc = run_agent(config, log)  # restarts while the broker is still away
        _wait_polls(log, 5)
        back = now_ms()
        mosquitto.start()
        wait_for(lambda: telemetry_times(influxdb, now_ms() - 1000), 60, "live telemetry after the outage")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        probe.stop()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert probe.out_of_order() == [], "the killed agent's backlog first, then the new agent's"

    telemetry = [msgspec.json.decode(p) for t, p in committed if t.endswith("/telemetry")]
    assert len(telemetry) >= 12, f"only {len(telemetry)} telemetry messages were in the outbox"
    wanted = {m["ts"] for m in telemetry}
    wait_for(lambda: wanted <= set(telemetry_times(influxdb)), 30, "every committed sample in InfluxDB")
    # And the restarted agent's own samples from the rest of the outage came too.
    after = [t for t in telemetry_times(influxdb, killed) if t < back]
    assert len(after) >= 5
    text = log.read_text()
    assert "from before the restart" in text and "Traceback" not in text


# --- a long outage fills the outbox: the oldest go, the drop count reaches InfluxDB ----------------


def _wait_polls(log: Path, polls: int) -> None:
    """Until the agent process has finished ``polls`` more polls (APScheduler logs each at INFO).
    With the broker away, a poll's messages are committed to the outbox before it returns."""
    after = len(log.read_bytes())
    wait_for(lambda: log.read_bytes()[after:].count(b"executed successfully") >= polls, 30,
             f"{polls} more polls of the agent")


def test_a_full_outbox_drops_the_oldest_keeps_the_newest_and_reports_the_count(tmp_path, mosquitto, influxdb,
                                                                              octoprint, collector):
    cfg = agent_config_for(tmp_path, mosquitto, [(PRINTER, octoprint.url, octoprint.api_key)],
                           interval=0.2, timeout=0.3)
    cfg.outbox.max_messages = 100  # the smallest cap config allows: 20 s of polls at 5 per second
    agent = start_agent(cfg)
    try:
        wait_for(lambda: telemetry_times(influxdb), 15, "first telemetry")
        mosquitto.stop()
        stopped = now_ms()
        wait_for(lambda: agent.publisher.outbox.dropped_total() >= 30, 40, "30 drops")
        mosquitto.start()
        wait_for(lambda: rows(influxdb, "SELECT * FROM agent WHERE dropped > 0"), 60, "the drop count in InfluxDB")
        # No more polls, then the outbox drained: a message polled just before stop() would
        # rightly wait in the outbox for the next start, not arrive below.
        agent.scheduler.shutdown(wait=True)
        wait_for(lambda: agent.publisher.outbox.pending() == 0, 30, "the outbox to drain")
    finally:
        agent.stop()
    dropped = agent.publisher.outbox.dropped_total()
    stored = max(r["dropped"] for r in rows(influxdb, "SELECT dropped FROM agent"))
    assert stored == dropped

    last_seq = agent.workers[0].seq
    wait_for(lambda: len(stored_seqs(influxdb)) >= last_seq - dropped, 30, "everything kept to arrive")
    seqs = stored_seqs(influxdb)
    missing = sorted(set(range(1, last_seq + 1)) - set(seqs))
    assert len(missing) == dropped and len(seqs) == last_seq - dropped
    assert missing == list(range(missing[0], missing[0] + dropped)), "one block: the oldest of the outage"
    first_lost_ts = _ts_before(influxdb, missing[0])
    assert first_lost_ts < stopped + 1000, "the drops start where the outage starts, not later"


def _ts_before(influx, seq: int) -> int:
    found = rows(influx, f"SELECT seq FROM telemetry WHERE printer = '{PRINTER}' AND seq = {seq - 1}")
    return found[0]["time"] if found else 0


# --- a frozen broker (socket open, nothing acknowledged): messages still reach the disk ------------


def test_a_frozen_broker_is_given_up_after_the_ack_timeout_and_nothing_is_lost(tmp_path, mosquitto, influxdb,
                                                                            octoprint, collector):
    cfg = agent_config_for(tmp_path, mosquitto, [(PRINTER, octoprint.url, octoprint.api_key)],
                           interval=0.5, timeout=0.5)
    agent = Agent(cfg)
    agent.publisher.ack_timeout = 3.0
    agent.start()
    try:
        wait_for(lambda: telemetry_times(influxdb), 15, "first telemetry")
        mosquitto.pause()  # SIGSTOP: the TCP connection stays up, nothing is acknowledged
        paused = now_ms()
        wait_for(lambda: agent.publisher.outbox.pending() >= 4, 10, "unacknowledged messages on disk")
        on_disk_after = (now_ms() - paused) / 1000
        wait_for(lambda: agent.publisher.outbox.pending() >= 12, 15, "more polls queued while it is frozen")
        mosquitto.resume()
        wait_for(lambda: agent.publisher.outbox.pending() == 0 and telemetry_times(influxdb, now_ms() - 1000),
                 60, "the outbox to drain and live telemetry")
        agent.scheduler.shutdown(wait=True)  # no more polls: one just before stop() would wait on disk
        wait_for(lambda: agent.publisher.outbox.pending() == 0, 30, "the last polls sent")
    finally:
        agent.stop()
    assert on_disk_after < 3.0 + 2 * agent.publisher.tick + 1, f"took {on_disk_after:.1f} s to reach the disk"
    last_seq = agent.workers[0].seq
    wait_for(lambda: len(stored_seqs(influxdb)) >= last_seq, 30, "every message in InfluxDB")
    assert stored_seqs(influxdb) == list(range(1, last_seq + 1))


# --- one end per job: an agent restart while finishing, a replay overlapping live polls ----------

FINISHING_S = 6  # the virtual printer holds "Finishing" this long (it sleeps after the job's M400)


def _state_points_since(influx, since_ms: int) -> list[dict]:
    return rows(influx, f"SELECT state, seq FROM state WHERE printer = '{PRINTER}' AND time >= {since_ms}ms")


@pytest.mark.parametrize("back", ["while_finishing", "after_the_end"])
def test_an_agent_killed_while_the_printer_is_finishing_sends_one_done_for_the_job(back, tmp_path, mosquitto,
                                                                                  influxdb, octoprint, collector):
    config = write_agent_toml(tmp_path, mosquitto, octoprint, interval=0.2)
    log = tmp_path / "agent.log"
    proc = run_agent(config, log)
    try:
        wait_for(lambda: rows(influxdb, "SELECT * FROM state WHERE state = 'idle'"), 20, "the agent's first state")
        octoprint.command(f"!!DEBUG:sleep_after_next M400 {FINISHING_S}")
        octoprint.upload_and_print("short.gcode", make_gcode(60))
        wait_for(lambda: rows(influxdb, "SELECT * FROM state WHERE state = 'finishing'"), FINISHING_S,
                 "the agent to report finishing", interval=0.05)
        proc.send_signal(signal.SIGKILL)  # the open job is on disk; its end has not been seen
        proc.wait(10)
        killed = now_ms()
        if back == "after_the_end":
            octoprint.wait_for_state("Operational", timeout=FINISHING_S + 10)
        proc = run_agent(config, log)
        done = wait_for(lambda: rows(influxdb, "SELECT seq FROM job WHERE kind = 'done'"), 20, "the done event")
        wait_later_telemetry(influxdb, PRINTER, done[0]["seq"])  # a second done would be stored by now
        first_state = _state_points_since(influxdb, killed)[0]["state"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    # The scenario happened as named: the restarted agent's first look saw finishing, or idle.
    assert first_state == ("finishing" if back == "while_finishing" else "idle"), first_state
    jobs = events_per_job(influxdb, PRINTER)
    assert_each_job_started_and_ended_once(jobs)
    assert [dict(c) for c in jobs.values()] == [{"started": 1, "done": 1}]


def test_an_outbox_replay_overlapping_live_data_sends_each_job_event_once(tmp_path, mosquitto, influxdb,
                                                                          octoprint, collector):
    """A frozen broker: the messages sent live meanwhile sit in its socket, the agent gives up on
    them, takes them back into the outbox, and the job ends. When the broker wakes it delivers
    the live copies and then the replay of the same messages, while a second job starts live."""
    cfg = agent_config_for(tmp_path, mosquitto, [(PRINTER, octoprint.url, octoprint.api_key)],
                           interval=0.2, timeout=0.3)
    deliveries = DeliveryProbe(mosquitto)
    agent = Agent(cfg)
    agent.publisher.ack_timeout = 2.0
    agent.start()
    try:
        octoprint.upload_and_print("first.gcode", make_gcode(120))
        wait_for(lambda: rows(influxdb, "SELECT * FROM job WHERE kind = 'started'"), 15, "the first started event")
        mosquitto.pause()
        octoprint.wait_for_state("Operational", timeout=30)
        wait_for(lambda: _outbox_events(agent, "done"), 15, "the done event in the outbox")
        mosquitto.resume()
        octoprint.upload_and_print("second.gcode", make_gcode(120))
        octoprint.wait_for_state("Operational", timeout=30)
        ends = wait_for(lambda: rows(influxdb, "SELECT seq FROM job WHERE kind = 'done'")[1:], 30, "the second done")
        wait_later_telemetry(influxdb, PRINTER, max(r["seq"] for r in ends))
    finally:
        agent.stop()
        deliveries.stop()
    jobs = events_per_job(influxdb, PRINTER)
    assert len(jobs) == 2
    assert_each_job_started_and_ended_once(jobs)
    # The overlap happened: messages came twice, the live copy and the replayed one, each time
    # as the very same message (same point), never as a new one.
    assert deliveries.repeats(), "no message was delivered both live and from the replay"
    assert deliveries.changed() == {}, "a message was sent again with other content"
    seqs = stored_seqs(influxdb)
    assert seqs == list(range(1, seqs[-1] + 1)), "a message is missing"


def _outbox_events(agent, kind: str) -> list[dict]:
    items = agent.publisher.outbox.peek_batch(100_000)
    return [m for m in (msgspec.json.decode(p) for _, t, p, _ in items if t.endswith("/event")) if m["kind"] == kind]


class DeliveryProbe:
    """Every printer message as the broker delivers it, keyed by (topic, seq)."""

    def __init__(self, broker):
        self.seen: dict[tuple[str, int], list[bytes]] = {}
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="delivery-probe",
                                  clean_session=False)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *a: c.subscribe("printfarm/v1/+/+/+", 1)
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "the probe to connect")

    def _on_message(self, client, userdata, msg):
        seq = msgspec.json.decode(msg.payload).get("seq")
        if seq is not None and not msg.retain:  # printer messages, not a retained copy on subscribing
            self.seen.setdefault((msg.topic, seq), []).append(msg.payload)

    def repeats(self) -> dict:
        return {key: copies for key, copies in self.seen.items() if len(copies) > 1}

    def changed(self) -> dict:
        return {key: copies for key, copies in self.repeats().items() if len(set(copies)) > 1}

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()
