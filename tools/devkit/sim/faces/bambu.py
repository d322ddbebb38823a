"""The simulator speaking Bambu Lab's LAN MQTT: its Bambu printers' lives as report streams.

Bambu printers are not asked, they tell: every ``period`` real seconds each simulated Bambu
printer is advanced to the simulated now and its state is published through a fake printer
(bambu_printer.py) to the stand-in broker (devkit.servers.bambu.BambuBroker): the whole report
for an X1, the changed fields for a P1 or A1. A printer the simulation switches off goes
silent (its broker stays up here, where in a lab it would vanish): either way the agent shows
it unreachable.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devkit.sim.faces.bambu_3mf import three_mf
from devkit.sim.faces.bambu_printer import CANCEL_CODE_FOR, CANCELLED, BambuLink, FakeBambuPrinter, family_of
from devkit.sim.faces.bambu_reports import idle_print_object
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
    """Where the simulated Bambu printers publish, their serials (printer id -> serial) and where
    each one's storage lies (serial -> a directory its FTPS serves: devkit.servers.bambu.BambuBroker.ftps)."""

    host: str
    port: int
    serials: dict[str, str] = field(default_factory=dict)
    period: float = 1.0  # real seconds between two reports of a printer
    storage: dict[str, str] = field(default_factory=dict)


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
                _store_3mf(self.setup.storage.get(fake.serial), printer)
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
    fake.update(**_temperatures(p, now), **_job_fields(p, now), ams=_ams(fake, p),
                wifi_signal=f"-{44 + int(now) % 5}dBm")


# --- material: the AMS tray of the job's material, and the job's 3MF on the printer's storage ---------
# The stand-in's AMS (bambu_reports._IDLE) holds PLA black, PLA white, PETG red, PLA blue.
TRAY_OF = {"PLA": (0, "#000000"), "PETG": (2, "#F95959")}
DENSITY = {"PLA": 1.24, "PETG": 1.27, "TPU": 1.21}


def job_material(job) -> str:
    """A simulated job's material, from its name (the simulator names jobs "..._PETG_1h5m.gcode")."""
    return next((m for m in DENSITY if f"_{m}_" in job.name), "PLA")


def _ams(fake: FakeBambuPrinter, p: SimPrinter) -> dict:
    """``ams`` with ``tray_now`` on the job's material while it prints (255: none, or not in the AMS)."""
    ams = copy.deepcopy(fake.state.get("ams") or idle_print_object()["ams"])
    active = p.job is not None and p.phase in ("printing", "paused")
    ams["tray_now"] = str(TRAY_OF.get(job_material(p.job), (255,))[0] if active else 255)
    return ams


def _store_3mf(folder: str | None, p: SimPrinter) -> None:
    """The job's sliced 3MF where a slicer's LAN print puts it, once per job."""
    if folder is None or p.job is None or p.phase not in ("printing", "paused"):
        return
    path = Path(folder) / f"{p.job.name.removesuffix('.gcode')}.gcode.3mf"
    if path.exists():
        return
    material = job_material(p.job)
    grams = round(p.job.filament_mm * 3.14159265 * 0.875 ** 2 / 1000 * DENSITY[material], 2)
    colour = TRAY_OF.get(material, (0, "#FFFFFF"))[1]
    filament = {"id": 1, "tray_info_idx": "GFL99", "type": material, "color": colour,
                "used_m": f"{p.job.filament_mm / 1000:.2f}", "used_g": f"{grams:.2f}"}
    temporary = path.with_suffix(".part")
    temporary.write_bytes(three_mf({1: [filament]}))
    temporary.replace(path)  # whole or not at all, as the FTPS server may read it any moment


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
