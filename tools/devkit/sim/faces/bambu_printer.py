"""Fake Bambu Lab printers: their report stream over MQTT, scripted by a test or the simulator.

``BambuLink`` is one MQTT connection (to devkit.servers.bambu.BambuBroker's plain listener)
that carries any number of ``FakeBambuPrinter``s, as the firmware inside each printer publishes
to its own broker. A printer keeps the whole ``print`` object; each change is published as an X1
does (the whole object) or as a P1/A1 does (only the fields that changed), and a ``pushall``
request is answered with the whole object. ``stall()`` makes a printer go silent while its
broker stays up: the failure a monitor must notice.
"""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devkit.sim.faces.bambu_reports import changed, envelope, idle_print_object

CANCELLED = 0x0300400C  # 50348044, "the task was cancelled"
FULL_REPORT_FAMILIES = ("X1",)  # P1 and A1 send only what changed


def family_of(model: str) -> str:
    name = model.upper()
    return "X1" if "X1" in name else "A1" if "A1" in name else "P1"


class FakeBambuPrinter:
    def __init__(self, link: "BambuLink", serial: str, family: str = "X1"):
        self.link, self.serial, self.family = link, serial, family
        self.state = idle_print_object()
        self.sequence = 0
        self.pushalls = 0  # pushall requests received
        self.reports = 0  # reports published
        self.stalled = False
        self._lock = threading.Lock()

    @property
    def partial(self) -> bool:
        return self.family not in FULL_REPORT_FAMILIES

    # -- the report stream -----------------------------------------------------------------
    def update(self, **fields) -> None:
        """Change fields of the print object and report it the way this family does."""
        with self._lock:
            before = dict(self.state)
            self.state.update(fields)
            body = changed(before, self.state) if self.partial else self.state
            if body:
                self._send(body, self.partial)

    def heartbeat(self) -> None:
        """What keeps a real printer's stream going when nothing else moves: the Wi-Fi level."""
        self.update(wifi_signal=f"-{44 + self.sequence % 5}dBm")

    def answer(self, request: dict) -> None:
        pushing = request.get("pushing") if isinstance(request, dict) else None
        if isinstance(pushing, dict) and pushing.get("command") == "pushall":
            with self._lock:
                self.pushalls += 1
                self._send(self.state, partial=False)

    def stall(self) -> None:
        self.stalled = True

    def resume(self) -> None:
        self.stalled = False

    def _send(self, body: dict, partial: bool) -> None:
        if self.stalled:
            return
        self.sequence += 1
        self.reports += 1
        self.link.publish(self.serial, envelope(body, self.sequence, partial))

    # -- a print's life, in the fields a printer reports ------------------------------------
    def start(self, name: str, layers: int = 100, minutes: int = 30, task_id: str = "0",
              nozzle: float = 220.0, bed: float = 65.0, started: int | None = None) -> None:
        self.update(gcode_state="PREPARE", subtask_name=name, gcode_file=f"/data/Metadata/{name}.gcode",
                    gcode_start_time=str(started or int(time.time())), task_id=task_id, subtask_id=task_id,
                    mc_percent=0, mc_remaining_time=minutes, layer_num=0, total_layer_num=layers,
                    nozzle_target_temper=nozzle, bed_target_temper=bed, print_error=0, mc_print_error_code="0",
                    hms=[])

    def progress(self, percent: int, layer: int, minutes_left: int, nozzle: float, bed: float) -> None:
        self.update(gcode_state="RUNNING", mc_percent=percent, layer_num=layer, mc_remaining_time=minutes_left,
                    nozzle_temper=nozzle, bed_temper=bed)

    def pause(self, print_error: int = 0) -> None:
        self.update(gcode_state="PAUSE", print_error=print_error)

    def finish(self) -> None:
        self.update(gcode_state="FINISH", mc_percent=100, mc_remaining_time=0,
                    layer_num=self.state["total_layer_num"], nozzle_target_temper=0.0, bed_target_temper=0.0)

    def cancel(self) -> None:
        self.update(gcode_state="FAILED", print_error=CANCELLED, nozzle_target_temper=0.0, bed_target_temper=0.0)

    def fail(self, print_error: int, hms: list[tuple[int, int]] = ()) -> None:
        self.update(gcode_state="FAILED", print_error=print_error, mc_print_error_code=str(print_error),
                    hms=[{"attr": a, "code": c} for a, c in hms], nozzle_target_temper=0.0, bed_target_temper=0.0)

    def idle(self) -> None:
        """Someone cleared the printer's screen: ready for the next job."""
        self.update(gcode_state="IDLE", print_error=0, mc_print_error_code="0", hms=[], mc_percent=0,
                    layer_num=0, total_layer_num=0, subtask_name="", gcode_file="", gcode_start_time="0")


class BambuLink:
    """One MQTT connection carrying the reports of many fake printers, answering their requests."""

    def __init__(self, host: str, port: int, client_id: str = "devkit-bambu-printers"):
        self.printers: dict[str, FakeBambuPrinter] = {}
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.on_connect = self._on_connect
        # Ready once subscribed, not once connected: a request sent before the broker has the
        # subscription would go to no one.
        self.client.on_subscribe = lambda *a: self._connected.set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError(f"fake Bambu printers could not connect to {host}:{port}")
        self._beating = threading.Event()

    def add(self, serial: str, family: str = "X1") -> FakeBambuPrinter:
        printer = self.printers[serial] = FakeBambuPrinter(self, serial, family)
        return printer

    def publish(self, serial: str, report: dict) -> None:
        self.client.publish(f"device/{serial}/report", json.dumps(report, separators=(",", ":")), qos=0)

    def heartbeats(self, period: float) -> None:
        """Every ``period`` seconds, a heartbeat report from every printer (until ``close``)."""
        def run():
            while not self._beating.wait(period):
                for printer in list(self.printers.values()):
                    printer.heartbeat()
        threading.Thread(target=run, name="bambu heartbeats", daemon=True).start()

    def close(self) -> None:
        self._beating.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe("device/+/request", qos=1)

    def _on_message(self, client, userdata, msg):
        serial = msg.topic.split("/")[1]
        printer = self.printers.get(serial)
        if printer is not None:
            try:
                printer.answer(json.loads(msg.payload))
            except ValueError:
                pass  # a real printer ignores garbage requests too
