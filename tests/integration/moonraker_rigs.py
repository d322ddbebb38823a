"""A Moonraker printer to test against, real or simulated, driven through the same calls.

``RealRig``: Klipper's host in batch mode and Moonraker (tools/devkit/servers/klipper.py).
``SimRig``: one printer of ``devkit.sim`` speaking Moonraker. Both start prints as Moonraker
user ``operator``, so history entries and job events carry a user.

What batch mode cannot show, and the simulator therefore need not match: temperatures (they
read 0; tests/unit/test_moonraker_view.py covers them with recorded frames), M73 progress from
a slicer, an MCU error or a board switched off (recorded frames again), and real print times.
"""

from __future__ import annotations

import threading

import requests

from agent.jobs import JobTracker, Ledger
from agent.printers.moonraker import Moonraker as MoonrakerClient
from devkit.pipeline import wait_for
from devkit.servers import Klipper, Moonraker
from devkit.sim import SimClock, Simulator
from devkit.sim.server import PrinterSpec

USER = "operator"


class RealRig:
    kind = "moonraker"

    def __init__(self, tmp):
        self.klipper = Klipper(tmp / "klipper").start()
        self.server = Moonraker(tmp / "moonraker", self.klipper).start()
        self.server.create_user(USER)
        self.url = self.server.url

    def call(self, method: str, path: str, **kwargs):
        return self.server.result(method, path, **kwargs)

    def print_file(self, name: str, gcode: str) -> None:
        self.server.print_file(name, gcode)

    def kill_klipper(self) -> None:
        self.klipper.kill()

    def start_klipper(self) -> None:
        self.klipper.start()

    def settle(self) -> None:
        """Until Moonraker has finished taking Klipper in (see Moonraker.settled)."""
        self.server.wait_for(self.server.settled, 30, "Moonraker to settle")

    def stop_moonraker(self) -> None:
        self.server.stop()

    def start_moonraker(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.stop()
        self.klipper.remove()


class SimRig:
    kind = "simulator"

    def __init__(self, tmp=None):
        self.sim = Simulator([PrinterSpec("rig", api="moonraker")], "SIMKEY", SimClock(speed=1.0), auto=False).start()
        self.url = self.sim.url("rig")
        token = self.call("POST", "/access/user", json={"username": USER, "password": "x"})["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs):
        reply = requests.request(method, self.url + path, headers=getattr(self, "headers", {}), timeout=5, **kwargs)
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"simulator {method} {path} -> {reply.status_code}: {reply.text[:300]}")
        return reply.json().get("result")

    def print_file(self, name: str, gcode: str) -> None:
        self.call("POST", "/server/files/upload", files={"file": (name, gcode.encode())})
        self.call("POST", "/printer/print/start", params={"filename": name})

    def kill_klipper(self) -> None:
        self.call("POST", "/sim/klippy", params={"state": "down"})

    def start_klipper(self) -> None:
        self.call("POST", "/sim/klippy", params={"state": "up"})

    def settle(self) -> None:
        pass  # the simulator has no start-up of its own

    def stop_moonraker(self) -> None:
        self.call("POST", "/sim/down", params={"on": "1"})

    def start_moonraker(self) -> None:
        self.call("POST", "/sim/down", params={"on": "0"})

    def close(self) -> None:
        self.sim.stop()


def history(rig) -> list[dict]:
    return rig.call("GET", "/server/history/list", params={"limit": 10})["jobs"]


def print_state(rig) -> str:
    return rig.call("GET", "/printer/objects/query", params={"print_stats": ""})["status"]["print_stats"]["state"]


class Watcher:
    """The agent's Moonraker client and job tracker, fed as the agent feeds them: on every
    ``changed()`` and on polls (``until`` polls every 50 ms, like a fast telemetry schedule)."""

    def __init__(self, url: str, interval: float = 0.5, api_key=None):
        self.client = MoonrakerClient(url, api_key, interval=interval, timeout=interval)
        self.tracker = JobTracker(ledger=Ledger())
        self.snaps, self.events = [], []
        self._lock = threading.Lock()
        self.client.start(self.observe)

    def observe(self):
        with self._lock:
            snap = self.client.poll()
            self.snaps.append(snap)
            self.events += self.tracker.update(snap)
            return snap

    def forget(self):
        """Start the record afresh (snapshots and events so far are dropped)."""
        with self._lock:
            self.snaps, self.events = [], []

    def until(self, predicate, what: str, timeout: float = 30.0):
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.observe()), timeout, what,
                        interval=0.05)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def states(self) -> list[str]:
        """Distinct states in the order seen (repeats collapsed)."""
        out = []
        for snap in self.snaps:
            if not out or out[-1] != snap.state:
                out.append(snap.state)
        return out

    def close(self):
        self.client.close()
