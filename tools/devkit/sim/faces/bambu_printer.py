"""Fake Bambu Lab printers: their report stream over MQTT, scripted by a test or the simulator.

``BambuLink`` is one MQTT connection (to devkit.servers.bambu.BambuBroker's plain listener)
that carries any number of ``FakeBambuPrinter``s, as the firmware inside each printer publishes
to its own broker. A printer keeps the whole ``print`` object; each change is published as an X1
does (the whole object) or as a P1/A1 does (only the fields that changed), and a ``pushall``
request is answered with the whole object. ``stall()`` makes a printer go silent while its
broker stays up: the failure a monitor must notice. ``doze()`` is what an idle A1 does (ha-bambulab
#493): it stops reporting until a client asks again (``pushing.start`` or ``pushall``).

What real printers do and the fakes reproduce (tools/devkit/sim/faces/bambu_models/README.md):
a printer of a named model starts from that model's report shape (P1/A1: chamber placeholder 5,
partial reports; X1C 01.09+, H2D, H2S, P2S: ``device.ctc`` and ``device.extruder``); LAN jobs
carry ``task_id`` "0" and no ``gcode_start_time``; a cancel's code 50348044 lasts
``cancel_code_for`` seconds, then ``print_error`` is 0 while ``gcode_state`` stays FAILED (newer
firmware keeps the code in ``fail_reason``).
"""

from __future__ import annotations

import copy
import json
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devkit.sim.faces.bambu_reports import changed, envelope, idle_print_object, model_report, packed

CANCELLED = 0x0300400C  # 50348044, "the task was cancelled"
FULL_REPORT_FAMILIES = ("X1", "H2")  # P1 and A1 send only what changed
MODELS = ("A1", "P1P", "X1C", "H2D", "H2S", "P2S")  # with a report shape of their own (bambu_models/)
CANCEL_CODE_FOR = 2.0  # seconds the cancel code stays in print_error ("a couple of seconds")


def family_of(model: str) -> str:
    name = model.upper()
    for family in ("X1", "A1", "H2"):
        if family in name:
            return family
    return "P1"  # P1P, P1S, P2S


class FakeBambuPrinter:
    """``kind``: a family (X1, P1, A1: the classic X1 object) or a model with a report shape of its
    own (A1, P1P, X1C, H2D, H2S, P2S; see bambu_models/)."""

    def __init__(self, link: "BambuLink", serial: str, kind: str = "X1", cancel_code_for: float = CANCEL_CODE_FOR):
        self.link, self.serial, self.family = link, serial, family_of(kind)
        shaped = kind.upper() in MODELS
        self.state = model_report(kind) if shaped else idle_print_object()
        if shaped:
            self.state.update(IDLE_FIELDS)
        self.cancel_code_for = cancel_code_for
        self.sequence = 0
        self.pushalls = 0  # pushall requests received
        self.starts = 0  # pushing.start requests received
        self.reports = 0  # reports published
        self.stalled = False  # firmware not reporting, deaf to requests
        self.dozing = False  # an idle A1: silent until asked
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

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
        command = pushing.get("command") if isinstance(pushing, dict) else None
        if command not in ("pushall", "start"):
            return
        with self._lock:
            if command == "pushall":
                self.pushalls += 1
            else:
                self.starts += 1
            if not self.stalled:
                self.dozing = False  # asked: it reports again
            self._send(self.state, partial=False)

    def stall(self) -> None:
        self.stalled = True

    def resume(self) -> None:
        self.stalled = False

    def doze(self) -> None:
        """Stop reporting until asked, as an idle A1 does."""
        self.dozing = True

    def _send(self, body: dict, partial: bool) -> None:
        if self.stalled or self.dozing:
            return
        self.sequence += 1
        self.reports += 1
        self.link.publish(self.serial, envelope(body, self.sequence, partial))

    # -- a print's life, in the fields a printer reports ------------------------------------
    def start(self, name: str, layers: int = 100, minutes: int = 30, task_id: str = "0",
              nozzle: float = 220.0, bed: float = 65.0, started: int | None = None) -> None:
        """A job: a LAN one by default (task_id "0", no gcode_start_time, as every captured report);
        ``started`` adds a gcode_start_time for the tests of that (rarer) path."""
        fields = {"gcode_state": "PREPARE", "subtask_name": name, "gcode_file": f"/data/Metadata/{name}.gcode",
                  "task_id": task_id, "subtask_id": task_id, "mc_percent": 0, "mc_remaining_time": minutes,
                  "layer_num": 0, "total_layer_num": layers, "bed_target_temper": bed, "print_error": 0,
                  "mc_print_error_code": "0", "hms": [], **self._code_fields(0),
                  **self._nozzle(self._nozzle_now(), nozzle)}
        if started is not None:
            fields["gcode_start_time"] = str(started)
        self.update(**fields)

    def progress(self, percent: int, layer: int, minutes_left: int, nozzle: float, bed: float) -> None:
        self.update(gcode_state="RUNNING", mc_percent=percent, layer_num=layer, mc_remaining_time=minutes_left,
                    bed_temper=bed, **self._nozzle(nozzle, self._nozzle_target()))

    def pause(self, print_error: int = 0) -> None:
        self.update(gcode_state="PAUSE", print_error=print_error)

    def finish(self) -> None:
        self.update(gcode_state="FINISH", mc_percent=100, mc_remaining_time=0, bed_target_temper=0.0,
                    layer_num=self.state["total_layer_num"], **self._nozzle(self._nozzle_now(), 0.0))

    def cancel(self) -> None:
        """FAILED with the cancel code, which clears after ``cancel_code_for`` seconds (FAILED stays)."""
        self.update(gcode_state="FAILED", print_error=CANCELLED, bed_target_temper=0.0,
                    **self._code_fields(CANCELLED), **self._nozzle(self._nozzle_now(), 0.0))
        self._later(self.cancel_code_for, self._cancel_code_cleared)

    def fail(self, print_error: int, hms: list[tuple[int, int]] = ()) -> None:
        self.update(**{"gcode_state": "FAILED", "print_error": print_error, "mc_print_error_code": str(print_error),
                       "hms": [{"attr": a, "code": c} for a, c in hms], "bed_target_temper": 0.0,
                       **self._code_fields(print_error), **self._nozzle(self._nozzle_now(), 0.0)})

    def feed_from(self, tray: int) -> None:
        """The AMS feeds ``tray`` to the nozzle (``ams.tray_now``: AMS n // 4 tray n % 4; 254 the
        external spool; 255 none). A printer of a model-shaped kind gets the one-AMS object first."""
        ams = copy.deepcopy(self.state.get("ams") or idle_print_object()["ams"])
        ams["tray_now"] = str(tray)
        self.update(ams=ams)

    def idle(self) -> None:
        """Someone cleared the printer's screen: ready for the next job."""
        self.update(**{**IDLE_FIELDS, "mc_print_error_code": "0", **self._code_fields(0)})

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    # -- model details ---------------------------------------------------------------------
    def _cancel_code_cleared(self) -> None:
        if self.state.get("gcode_state") == "FAILED" and self.state.get("print_error") == CANCELLED:
            self.update(print_error=0)

    def _later(self, delay: float, call) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(delay, call)
        self._timer.daemon = True
        self._timer.start()

    def _code_fields(self, code: int) -> dict:
        """Newer firmware also keeps the end's code in fail_reason (and mc_print_error_code)."""
        if "fail_reason" not in self.state:
            return {}
        return {"fail_reason": str(code), "mc_print_error_code": str(code)}

    def _extruders(self) -> list | None:
        device = self.state.get("device")
        return device["extruder"]["info"] if isinstance(device, dict) and "extruder" in device else None

    def _active(self) -> int:
        return self.state["device"]["extruder"]["state"] >> 4 & 0xF

    def _nozzle_now(self) -> float:
        info = self._extruders()
        return float(info[self._active()]["temp"] & 0xFFFF) if info else float(self.state["nozzle_temper"])

    def _nozzle_target(self) -> float:
        info = self._extruders()
        return float(info[self._active()]["temp"] >> 16) if info else float(self.state["nozzle_target_temper"])

    def _nozzle(self, now: float, target: float) -> dict:
        """The printing nozzle's fields: top-level on one-nozzle models; on an H2D its entry of
        device.extruder.info (the top-level nozzle_temper there is the other nozzle)."""
        info = self._extruders()
        if not info:
            return {"nozzle_temper": now, "nozzle_target_temper": target}
        device = json.loads(json.dumps(self.state["device"]))  # a new object: changed() sees it
        device["extruder"]["info"][self._active()]["temp"] = packed(round(now), round(target))
        fields = {"device": device}
        if len(info) == 1:
            fields.update(nozzle_temper=now, nozzle_target_temper=target)
        return fields


# What an idle printer of any model shows (LAN mode: task ids "0").
IDLE_FIELDS = {"gcode_state": "IDLE", "print_error": 0, "hms": [], "mc_percent": 0, "mc_remaining_time": 0,
               "layer_num": 0, "total_layer_num": 0, "subtask_name": "", "gcode_file": "", "task_id": "0",
               "subtask_id": "0", "print_type": "idle"}


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

    def add(self, serial: str, kind: str = "X1", **options) -> FakeBambuPrinter:
        printer = self.printers[serial] = FakeBambuPrinter(self, serial, kind, **options)
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
        for printer in self.printers.values():
            printer.close()
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
