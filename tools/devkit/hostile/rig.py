"""Every hostile printer at once, beside good ones, watched by the agent as a real process.

Used by tests/integration/test_hostile_printers.py and bench/hostile_printers.py:

    with HostileRig(tmp, broker, good_tables) as rig:
        rig.start_agent(interval=1.0)
        rig.probe.wait_status("op-endless", lambda s: s["state"] == "unreachable", 10)

``probe`` subscribes to every printer topic and keeps, per printer, the last status and the
arrival times of its telemetry. The agent's RSS is read from /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devkit.hostile.bambu import HostileBambu
from devkit.hostile.http import HostileHTTP, Recorder
from devkit.hostile.moonraker import HostileMoonraker

REPO = Path(__file__).resolve().parents[3]

# printer id -> (API, behaviour, words its unreachable reason must contain)
CASES = {
    "op-endless": ("octoprint", "endless", "limits.reply_bytes"),
    "op-trickle": ("octoprint", "trickle_headers", "timeout"),
    "op-deep": ("octoprint", "deep", "limits.json_depth"),
    "op-redirect": ("octoprint", "redirect", "another host"),
    "pl-huge": ("prusalink", "huge_length", "limits.reply_bytes"),
    "pl-trickle": ("prusalink", "trickle_body", "timeout"),
    "mr-huge": ("moonraker", "huge_frame", "limits.message_bytes"),
    "mr-fragments": ("moonraker", "fragments", "limits."),
    "mr-trickle": ("moonraker", "trickle", "no frame and no pong"),
    "mr-flood": ("moonraker", "flood", "limits.held"),
    "mr-keys": ("moonraker", "keys", "limits.object_keys"),
    "mr-deep": ("moonraker", "deep", "limits.json_depth"),
    "bb-huge": ("bambu", "huge_packet", "limits.packet_bytes"),
    "bb-deep": ("bambu", "deep", "limits.json_depth"),
}


class Probe:
    def __init__(self, broker):
        self.status: dict[str, dict] = {}
        self.statuses: dict[str, list[dict]] = {}
        self.telemetry: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._decode = msgspec.json.Decoder(dict).decode
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"hostile-probe-{os.getpid()}")
        self.client.on_connect = lambda c, *a: c.subscribe("printfarm/v1/+/+/+", 1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) != 5:
            return
        printer, channel = parts[3], parts[4]
        body = self._decode(msg.payload)
        with self._lock:
            if channel == "status":
                self.status[printer] = body
                self.statuses.setdefault(printer, []).append(body)
            elif channel == "telemetry":
                self.telemetry.setdefault(printer, []).append(time.monotonic())

    def wait_status(self, printer: str, check: Callable[[dict], bool], timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                status = self.status.get(printer)
            if status is not None and check(status):
                return status
            time.sleep(0.05)
        return None

    def telemetry_between(self, printer: str, start: float, end: float) -> int:
        with self._lock:
            return sum(start <= t < end for t in self.telemetry.get(printer, []))

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


class HostileRig:
    """``good``: printer id -> [[printers]] keys of the well-behaved printers beside them;
    ``cases``: the hostile printers (a subset of CASES, or none)."""

    def __init__(self, tmp: Path, broker, good: dict[str, dict], cases: dict = CASES, extra: str = ""):
        self.tmp, self.broker, self.good, self.cases = Path(tmp), broker, good, cases
        self.extra = extra  # more tables for the agent's config, e.g. "[outbox]\nmax_messages = 100"
        self.recorder = Recorder().start()
        self.servers: dict[str, object] = {}
        self.proc: subprocess.Popen | None = None
        self.log = self.tmp / "agent.log"
        self.key = self.tmp / "hostile-key"
        self.key.write_text("hostile-printer-key-0123456789\n")
        self.probe = Probe(broker)

    def __enter__(self):
        for printer, (api, behaviour, _) in self.cases.items():
            if api in ("octoprint", "prusalink"):
                server = HostileHTTP(behaviour, target=self.recorder.url)
            elif api == "moonraker":
                server = HostileMoonraker(behaviour)
            else:
                server = HostileBambu(behaviour, self.tmp / printer)
            self.servers[printer] = server.start()
        return self

    def __exit__(self, *exc):
        self.stop_agent()
        self.probe.stop()
        for server in self.servers.values():
            server.stop()
        self.recorder.stop()

    def table(self, printer: str) -> dict:
        api = self.cases[printer][0]
        server = self.servers[printer]
        if api == "bambu":
            return server.table()
        table = {"type": api, "url": server.url}
        if api == "prusalink":
            table["password_file"] = str(self.key)
        elif api == "octoprint":
            table["api_key_file"] = str(self.key)
        return table

    def config(self, interval: float, timeout: float) -> Path:
        lines = ['log_level = "INFO"', "[agent]", 'id = "hostile-pi"', 'site = "lab"',
                 f'state_dir = "{self.tmp / "agent-state"}"', self.extra,
                 "[broker]", f'host = "{self.broker.host}"', f"port = {self.broker.port}"]
        tables = {**{p: self.table(p) for p in self.cases}, **self.good}
        for printer, table in tables.items():
            lines += ["[[printers]]", f'id = "{printer}"', f"interval = {interval}", f"timeout = {timeout}"]
            lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
        path = self.tmp / "agent.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_agent(self, interval: float = 1.0, timeout: float = 1.0, python: str = sys.executable,
                    env: dict | None = None) -> subprocess.Popen:
        env = env or {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([python, "-m", "agent", "run", "-c", str(self.config(interval, timeout))],
                                         cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.started = time.monotonic()
        return self.proc

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def hwm_mb(self) -> float:
        """Peak resident memory of the agent so far (the kernel's high-water mark)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def sigterm(self, timeout: float = 30.0) -> float:
        """Seconds from SIGTERM to the agent's exit (``timeout`` if it did not end)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return timeout
        return time.monotonic() - sent

    def stop_agent(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
