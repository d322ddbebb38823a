"""The simulator speaking Bambu Lab's LAN MQTT: its Bambu printers' lives as report streams.

Bambu printers are not asked, they tell: every ``period`` real seconds each simulated Bambu
printer is advanced to the simulated now and its state is published through a fake printer
(bambu_printer.py) to the stand-in broker (devkit.servers.bambu.BambuBroker): the whole report
for an X1, the changed fields for a P1 or A1. A printer the simulation switches off goes
silent (its broker stays up here, where in a lab it would vanish): either way the agent shows
it unreachable.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass, field

from devkit.sim.faces.bambu_printer import CANCEL_CODE_FOR, CANCELLED, BambuLink, FakeBambuPrinter, family_of
from devkit.sim.model import SimPrinter

# Serial prefixes of the families (as printed on the printers' labels).
SERIAL_PREFIX = {"X1": "00M", "P1": "01P", "A1": "039", "H2": "094"}
CHAMBER_PLACEHOLDER = 5

# The simulator's fault texts, as a Bambu printer would report them: (print_error, hms entries)
FAULTS = {
    "Thermal Runaway": (0x03008008, [(0x03000200, 0x00010003)]),
    "MINTEMP": (0x03008009, [(0x03000100, 0x00010007)]),
    "Heating failed": (0x03008008, [(0x03000200, 0x00010002)]),
}
OTHER_FAULT = (0x0300400B, [])  # internal communication error


def bambu_serial(printer_id: str, model: str) -> str:
    """A stable, serial-shaped name for a simulated printer (15 characters, like the real ones)."""
    digest = hashlib.sha1(printer_id.encode()).hexdigest().upper()
    return SERIAL_PREFIX[family_of(model)] + digest[:12]


@dataclass
class BambuSetup:
    """Where the simulated Bambu printers publish, and their serials (printer id -> serial)."""

    host: str
    port: int
    serials: dict[str, str] = field(default_factory=dict)
    period: float = 1.0  # real seconds between two reports of a printer


class BambuFleet:
    """Drives the simulator's Bambu printers; ``act`` runs a control call between two ticks."""

    def __init__(self, sim, setup: BambuSetup):
        self.sim, self.setup, self.period = sim, setup, setup.period
        self.link = BambuLink(setup.host, setup.port, client_id=f"devkit-sim-{setup.port}")
        self.fakes: dict[str, FakeBambuPrinter] = {
            pid: self.link.add(serial, family_of(sim.printers[pid].model)) for pid, serial in setup.serials.items()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim bambu", daemon=True)

    def start(self) -> "BambuFleet":
        self.tick()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.link.close()

    def act(self, printer_id: str, call) -> None:
        """``call(printer, now)`` — e.g. ``lambda p, now: p.cancel(now)`` — then report at once."""
        with self._lock:
            call(self.sim.printers[printer_id], self.sim.clock.now())
        self.tick()

    def tick(self) -> None:
        with self._lock:
            now = self.sim.clock.now()
            for pid, fake in self.fakes.items():
                printer = self.sim.printers[pid]
                printer.advance(now)
                _report(fake, printer, now, self.sim.site_down(pid, now))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.tick()


def _report(fake: FakeBambuPrinter, p: SimPrinter, now: float, cut_off: bool) -> None:
    if p.phase == "off" or cut_off:  # switched off, or its site's network is down
        fake.stall()
        return
    if fake.stalled:
        fake.resume()
    fake.update(**_temperatures(p, now), **_job_fields(p, now), wifi_signal=f"-{44 + int(now) % 5}dBm")


def _temperatures(p: SimPrinter, now: float) -> dict:
    bed = p.bed.actual(now)
    # P1 and A1 have no chamber sensor: they send a constant placeholder.
    chamber = round(21 + (bed - 21) * 0.15, 1) if family_of(p.model) == "X1" else CHAMBER_PLACEHOLDER
    return {"nozzle_temper": p.tool.actual(now), "nozzle_target_temper": p.tool.target,
            "bed_temper": bed, "bed_target_temper": p.bed.target, "chamber_temper": chamber}


def _job_fields(p: SimPrinter, now: float) -> dict:
    job = p.job
    if p.phase == "error":
        code, hms = next((c for key, c in FAULTS.items() if key in p.error), OTHER_FAULT)
        return {"gcode_state": "FAILED", "print_error": code, "mc_print_error_code": str(code),
                "hms": [{"attr": a, "code": c} for a, c in hms]}
    if job is None:
        return {"gcode_state": "IDLE", "print_error": 0, "hms": [], "mc_percent": 0, "layer_num": 0,
                "total_layer_num": 0, "subtask_name": "", "gcode_file": ""}
    layers = _layers(job)
    percent = job.completion(now)
    # A LAN job: task_id "0" and no gcode_start_time, as every report captured from a real printer.
    fields = {"subtask_name": job.name.removesuffix(".gcode"), "gcode_file": "/data/Metadata/plate_1.gcode",
              "task_id": "0", "subtask_id": "0", "total_layer_num": layers,
              "layer_num": int(percent / 100 * layers), "mc_percent": int(percent),
              "mc_remaining_time": math.ceil(max(job.total - job.elapsed(now), 0) / 60), "hms": []}
    return {**fields, **_phase(p, job, now)}


def _phase(p: SimPrinter, job, now: float) -> dict:
    if p.phase == "printing":
        return {"gcode_state": "PREPARE" if job.elapsed(now) < job.heat else "RUNNING", "print_error": 0}
    if p.phase == "paused":
        return {"gcode_state": "PAUSE", "print_error": 0}
    if job.ended == "done":
        return {"gcode_state": "FINISH", "print_error": 0, "mc_percent": 100, "layer_num": _layers(job)}
    if job.ended == "cancelled":  # the cancel code lasts a couple of seconds; FAILED stays
        recent = job.ended_at is not None and now - job.ended_at < CANCEL_CODE_FOR
        return {"gcode_state": "FAILED", "print_error": CANCELLED if recent else 0}
    return {"gcode_state": "FAILED", "print_error": OTHER_FAULT[0]}  # lost mid-print


def _layers(job) -> int:
    return max(int(job.duration / 40), 10)  # ~0.2 mm layers at the simulator's pace
