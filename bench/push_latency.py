"""Alert latency of push printers: from the printer's change to the notification at a webhook
receiver, through the real agent, Mosquitto and collector (see alert_latency.py, which runs it).

Moonraker: the real Moonraker 0.11 and Klipper's host in batch mode; a paused job, then an
emergency stop (M112) through Moonraker: Klipper shuts down, the job fails (print_failed). Timed
from Moonraker announcing the shutdown (notify_klippy_shutdown, to a websocket client of this
bench, as to the agent). Printed beside: from Klipper itself showing it (its API socket, asked
every 5 ms), which adds Klipper's own batching of status to Moonraker (klippy/webhooks.py
SUBSCRIPTION_REFRESH_TIME = 0.25 s), and from the request. Bambu: a fake X1 on the TLS stand-in for the printer's broker
(tools/devkit/servers/bambu.py); a job under way, then a FAILED report with an error code
(print_failed). Timed from publishing that report.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import websocket

from devkit.pipeline import wait_for
from devkit.servers import Klipper, Moonraker, klipper_gcode
from devkit.servers.bambu import BambuBroker
from devkit.sim.faces.bambu_printer import BambuLink

RULE = "print_failed"
SERIAL = "00M09A350100123"
CLOGGED = 0x03004006  # "the nozzle is clogged": a failure, not a heater fault (which would inhibit print_failed)


class MoonrakerRig:
    printer = "voron-1"

    def __init__(self, tmp: Path):
        self.klipper = Klipper(tmp / "klipper").start()
        self.server = Moonraker(tmp / "moonraker", self.klipper).start()
        self.table = {"id": self.printer, "type": "moonraker", "url": self.server.url}
        self.announced: list[float] = []  # arrivals of notify_klippy_shutdown at our own client
        self._ws = websocket.create_connection(self.server.url.replace("http", "ws", 1) + "/websocket", timeout=5)
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        self._ws.settimeout(None)
        try:
            while True:
                if "notify_klippy_shutdown" in self._ws.recv():
                    self.announced.append(time.time())
        except (websocket.WebSocketException, OSError):
            return  # closed

    def arm(self, n: int) -> None:
        self.server.wait_for(self.server.settled, 30, "Moonraker to settle")
        self.server.print_file(f"bench{n}.gcode", klipper_gcode(400, "PAUSE"))

    def change(self) -> tuple[float, float]:
        """Stop Klipper; returns when Moonraker announced it and when Klipper itself showed it."""
        shown: list[float] = []
        announced = len(self.announced)

        def watch():
            deadline = time.time() + 10
            while time.time() < deadline and not shown:
                try:
                    if self.klipper.info().get("state") == "shutdown":
                        shown.append(time.time())
                except (OSError, ValueError):
                    pass
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        self.server.result("POST", "/printer/emergency_stop")
        watcher.join()
        wait_for(lambda: len(self.announced) > announced, 10, "Moonraker to announce the shutdown", interval=0.005)
        return self.announced[-1], shown[0] if shown else time.time()

    def recover(self) -> None:
        self.server.result("POST", "/printer/firmware_restart")
        self.server.wait_for(lambda: self.server.status()["webhooks"]["state"] == "ready", 40, "Klipper ready")

    def close(self) -> None:
        self._ws.close()
        self.server.stop()
        self.klipper.remove()


class BambuRig:
    printer = "bbl-1"

    def __init__(self, tmp: Path):
        self.broker = BambuBroker(tmp / "bambu", [SERIAL]).start()
        self.link = BambuLink(self.broker.host, self.broker.port)
        self.x1 = self.link.add(SERIAL, "X1")
        self.link.heartbeats(0.25)
        self.table = {"id": self.printer, "type": "bambu", "host": self.broker.host,
                      "port": self.broker.endpoints[SERIAL].port, "serial": SERIAL,
                      "access_code_file": str(self.broker.access_code_file(SERIAL)),
                      "ca_file": str(self.broker.ca_path), "model": "X1C"}

    def arm(self, n: int) -> None:
        # A LAN job is known by its start second; trials come faster than one a second.
        self.x1.start(f"bench{n}", layers=400, minutes=300, started=int(time.time()) * 100 + n)
        self.x1.progress(1, 2, 299, nozzle=215.0, bed=60.0)

    def change(self) -> tuple[float, float]:
        began = time.time()  # the report is the printer's change
        self.x1.fail(CLOGGED)
        return began, began

    def recover(self) -> None:
        self.x1.idle()

    def close(self) -> None:
        self.link.close()
        self.broker.stop()


RIGS = {"moonraker": MoonrakerRig, "bambu": BambuRig}


def trial(rig, hook, engine, n: int, site: str = "lab", verbose: bool = False) -> tuple[float, float, float]:
    """One failure; returns seconds to the notification's arrival from the printer's API showing
    the change, from the printer's firmware showing it, and from the request that caused it."""
    def firings() -> list[tuple[dict, float]]:
        return [(note, t) for note, t in zip(list(hook.notes), list(hook.arrivals))
                if note["rule"] == RULE and note["kind"] == "firing" and note["printer"] == rig.printer]

    fired = len(firings())
    rig.arm(n)
    key = (site, rig.printer)
    wait_for(lambda: getattr(engine.printers.get(key), "job_file", None) == f"bench{n}" + (
        ".gcode" if isinstance(rig, MoonrakerRig) else "") and engine.printers[key].state in ("printing", "paused"),
        30, f"trial {n}'s job at the collector", interval=0.01)
    time.sleep(random.uniform(0, 0.5))  # any moment relative to the printer's own rhythm
    began = time.time()
    changed, source = rig.change()
    try:
        wait_for(lambda: len(firings()) > fired, 30, f"trial {n}'s alert", interval=0.002)
    except AssertionError:
        w = engine.printers.get(key)
        raise AssertionError(f"trial {n}: no {RULE} for {rig.printer}; the collector sees {w.state if w else None} "
                             f"(failed: {w.failed if w else None}); open incidents: {sorted(engine.open)}; "
                             f"notes: {[(x['rule'], x['kind'], x['printer']) for x in hook.notes[-6:]]}") from None
    note, arrived = firings()[-1]
    if verbose:
        down = engine.printers[key].down_since
        seen = f"the collector saw it down at +{(down - began) * 1000:.0f} ms, " if down else ""
        print(f"    from the request: the printer showed it at +{(source - began) * 1000:.0f} ms, "
              f"its API announced it at +{(changed - began) * 1000:.0f} ms, {seen}the alert engine "
              f"queued it at +{(note['queued_at'] - began) * 1000:.0f} ms, the receiver had it at "
              f"+{(arrived - began) * 1000:.0f} ms")
    rig.recover()
    wait_for(lambda: engine.printers[key].state == "idle", 40, f"trial {n}'s printer idle again", interval=0.01)
    return arrived - changed, arrived - source, arrived - began
