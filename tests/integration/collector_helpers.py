"""Collectors as real subprocesses (`python -m server run -c FILE`), a steady publisher, and
counting in InfluxDB: building blocks for the crash, outage and scale-out tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import requests
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import DB, wait_for, write_inventory
from devkit.servers import Mosquitto, free_port
from devkit.servers.process import Children

REPO = Path(__file__).resolve().parents[2]
# The collector acknowledges a message only after its write, so it needs a broker that lets
# many messages be in flight to one client (Mosquitto's default is 20).
BROKER_CONF = "max_inflight_messages 0\n"
SITE = "lab"


def broker(tmp: Path) -> Mosquitto:
    return Mosquitto(tmp / "mosquitto", extra_conf=BROKER_CONF).start()


def fleet_inventory(tmp: Path, printers: int) -> Path:
    return write_inventory(tmp / "fleet.toml", {printer_id(i): SITE for i in range(printers)})


def printer_id(i: int) -> str:
    return f"p{i:03d}"


# Kills, when the test process ends, any collector a failed test left running.
_children = Children()


class CollectorProcess:
    def __init__(self, tmp: Path, name: str, mqtt_broker, influx, inventory: Path, share_group: str = "",
                 flush_interval: float = 0.5, batch_size: int = 500, influx_timeout: float = 2.0,
                 nats_urls: list[str] = (), extra: str = ""):
        """``extra``: TOML appended to the config (tables of its own, e.g. [alerts])."""
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = self.dir / "server.toml"
        self.log_path = self.dir / "collector.log"
        self.config.write_text(textwrap.dedent(f"""\
            inventory = "{inventory}"
            state_dir = "{self.dir / 'state'}"
            [mqtt]
            host = "{mqtt_broker.host}"
            port = {mqtt_broker.port}
            client_id = "collector-{name}"
            share_group = "{share_group}"
            keepalive = 10
            [influx]
            url = "{influx.url}"
            database = "{DB}"
            batch_size = {batch_size}
            flush_interval = {flush_interval}
            timeout = {influx_timeout}
            spool_dir = "{self.dir / 'spool'}"
            [http]
            host = "127.0.0.1"
            port = {self.port}
            public = "status"
            [nats]
            servers = {list(nats_urls)!r}
            ack_wait = 5.0
            """).replace("'", '"') + extra)
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "CollectorProcess":
        self.proc = _children.spawn(f"collector-{self.dir.name}",
                                    [sys.executable, "-m", "server", "run", "-c", str(self.config)],
                                    self.log_path, cwd=REPO)
        if wait:
            wait_for(self._connected, 20, f"collector {self.dir.name} to connect")
        return self

    def _connected(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"collector exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.health().get("mqtt_connected", False)
        except requests.RequestException:
            return False

    def health(self) -> dict:
        return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).json()

    def metrics(self) -> dict[str, float]:
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        out = {}
        for name, labels, value in re.findall(r"^(printfarm_\w+?)(?:_total)?(\{[^}]*\})? ([0-9.e+-]+)$", text, re.M):
            out[name + labels] = float(value)
        return out

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.terminate(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class SteadyLoad:
    """Publishes telemetry at QoS 1 at ``rate`` msg/s from ``printers`` printers on a thread;
    ``confirmed`` counts the publishes the broker acknowledged. Every message is a distinct point
    (its own printer + sample time), so InfluxDB's point count must equal ``confirmed``."""

    def __init__(self, mqtt_broker, printers: int = 50, rate: float = 400.0, start_ms: int | None = None):
        self.printers, self.rate = printers, rate
        self.start_ms = start_ms or int(time.time() * 1000) - 3_600_000
        self.sent = 0
        self.confirmed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.on_publish = self._on_publish
        self.client.connect(mqtt_broker.host, mqtt_broker.port, 30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, *args):
        with self._lock:
            self.confirmed += 1

    def payload(self, n: int) -> tuple[str, bytes]:
        i, k = n % self.printers, n // self.printers
        msg = protocol.Telemetry(v=1, ts=self.start_ms + k, printer=printer_id(i), site=SITE, seq=k,
                                 state="printing", temps={"tool0": protocol.Temperature(210.0, 210.0)},
                                 progress=min(100.0, k / 100))
        return protocol.printer_topic(SITE, printer_id(i), "telemetry"), protocol.encode(msg)

    def start(self) -> "SteadyLoad":
        self._thread.start()
        return self

    def _run(self) -> None:
        # At most ``rate``: on a busy machine it falls behind instead of piling up unconfirmed
        # publishes in paho's queue, which stop() would then wait out.
        began = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - began) * self.rate)
            while self.sent < due and self.sent - self.confirmed < 2000:
                info = self.client.publish(*self.payload(self.sent), qos=1)
                assert info.rc == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)
                self.sent += 1
            time.sleep(0.01)

    def stop(self) -> int:
        """Stop publishing; return the number of messages the broker confirmed."""
        self._stop.set()
        self._thread.join(5)
        wait_for(lambda: self.confirmed >= self.sent, 30, "the broker to confirm every publish")
        self.client.loop_stop()
        self.client.disconnect()
        return self.confirmed


SENTINEL = "sentinel"  # the printer of the marker messages that settle() sends


class JobLoad(SteadyLoad):
    """Job events instead of telemetry: message 2k starts job k, message 2k+1 ends it (done)."""

    def payload(self, n: int) -> tuple[str, bytes]:
        job, i = n // 2, (n // 2) % self.printers
        started = self.start_ms + job * 1000
        if n % 2 == 0:
            msg = protocol.Event(v=1, ts=started, printer=printer_id(i), site=SITE, seq=n, kind="started",
                                 file=f"job{job}.gcode")
        else:
            msg = protocol.Event(v=1, ts=started + 600, printer=printer_id(i), site=SITE, seq=n, kind="done",
                                 file=f"job{job}.gcode", duration=0.6, job_started=started)
        return protocol.printer_topic(SITE, printer_id(i), "event"), protocol.encode(msg)


def telemetry_points(influx) -> int:
    rows = influx.query(f"SELECT count(seq) FROM telemetry WHERE printer != '{SENTINEL}'", db=DB)
    return int(rows[0]["count"]) if rows else 0


def wait_points(influx, expected: int, timeout: float = 60, settle_via=None) -> int:
    """Wait until InfluxDB holds ``expected`` telemetry points; return the count (may be more).

    ``settle_via=(broker, collectors)``: then also ``settle`` them, so that anything extra
    (a redelivery stored under another timestamp) would be in the count returned.
    """
    last = [0]

    def enough():
        try:
            last[0] = telemetry_points(influx)
        except RuntimeError:  # database not created yet
            return False
        return last[0] >= expected

    try:
        wait_for(enough, timeout, f"{expected} points in InfluxDB", interval=0.5)
    except AssertionError:
        raise AssertionError(f"InfluxDB holds {last[0]} of {expected} points") from None
    if settle_via:
        settle(influx, *settle_via)
    return telemetry_points(influx)


def settle(influx, mqtt_broker, collectors: list[CollectorProcess], timeout: float = 30) -> int:
    """The positive control of a "nothing more arrives" check: send marker messages through the
    broker until each collector has stored one. A collector handles its deliveries in order and
    writes them in order, so once its marker is in InfluxDB, so is everything delivered to it
    before (redeliveries included). Returns the number of markers sent."""
    received = lambda c: c.metrics()["printfarm_messages_received"]  # noqa: E731
    waiting, sent = set(range(len(collectors))), 0
    deadline = time.monotonic() + timeout
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} collector(s) never stored a marker"
        before = [received(c) for c in collectors]
        sent += 1
        ts = int(time.time() * 1000) + sent
        marker = protocol.Telemetry(v=1, ts=ts, printer=SENTINEL, site=SITE, seq=sent, state="idle")
        publish_raw(mqtt_broker, [(protocol.printer_topic(SITE, SENTINEL, "telemetry"), protocol.encode(marker))])
        wait_for(lambda: influx.query(f"SELECT seq FROM telemetry WHERE printer = '{SENTINEL}' AND time = {ts}ms",
                                      db=DB), timeout, f"marker {sent} in InfluxDB", interval=0.05)
        grew = [received(c) - b for c, b in zip(collectors, before)]
        if len(collectors) == 1:
            waiting.clear()
        elif sorted(grew) == [0] * (len(grew) - 1) + [1]:  # unambiguous: the marker went to this one
            waiting.discard(grew.index(1))
    return sent


def publish_raw(mqtt_broker, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    """Publish these exact payloads at QoS 1, in order, and wait until the broker has them all."""
    done = threading.Event()
    count = [0]

    def on_publish(*args):
        count[0] += 1
        if count[0] == len(messages):
            done.set()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_publish = on_publish
    client.max_inflight_messages_set(1)  # strictly in order
    client.connect(mqtt_broker.host, mqtt_broker.port, 30)
    client.loop_start()
    for topic, payload in messages:
        assert client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS
    assert done.wait(20), "broker did not confirm the publishes"
    client.disconnect()  # first: the network thread then ends at once, not at its next 1 s wake-up
    client.loop_stop()


def env_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))
