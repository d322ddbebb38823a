"""One simulated printer: a seeded, lazily advanced timeline of jobs, pauses, faults and power.

The printer only moves forward when ``advance(now)`` is called (on every request), processing
each due event at its own instant. Outcomes are drawn from the printer's own RNG when a job or
phase begins, so the same seed and the same control calls give the same history however often
the printer is polled.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from devkit.sim.site import SiteSchedule

AMBIENT = 21.0
MINUTE = 60.0
HISTORY_KEEP = 100

PHASES = ("off", "idle", "printing", "paused", "error")

ERRORS = (
    "Thermal Runaway, system stopped! Heater_ID: 0",
    "MINTEMP triggered, system stopped! Heater_ID: bed",
    "Heating failed, system stopped! Heater_ID: 0",
    "Printer halted. kill() called!",
    "Too many consecutive timeouts, printer still connected. Triggering a disconnect.",
)
PARTS = ("benchy", "cable_clip", "bracket_v3", "gear_housing", "prosthetic_finger", "name_tag",
         "phone_stand", "drawer_handle", "enclosure_lid", "keycap_set", "lamp_shade", "hinge_pin",
         "splint_wrist_M", "robot_chassis", "calibration_cube", "spool_holder", "fan_duct")
MATERIALS = (("PLA", 215, 60, 0.70), ("PETG", 240, 80, 0.25), ("TPU", 230, 50, 0.05))
USERS = ("anna", "erik", "elin", "johan", "sara", "lab", "maja", "oskar")


# --- material and capabilities (issues 23, 24) --------------------------------------------------
# Read by every face (OctoPrint, Moonraker, PrusaLink, Bambu): keep what a face needs here, and
# nothing here draws from a printer's RNG, so a seed gives the same history as before.
DENSITY = {"PLA": 1.24, "PETG": 1.27, "TPU": 1.21, "ABS": 1.04, "ASA": 1.07, "PC": 1.20, "PA": 1.14}  # g/cm3
FILAMENT_MM2 = math.pi * (1.75 / 2) ** 2  # the cross-section of 1.75 mm filament, mm2
COLOURS = {"PLA": "#1E5AA8", "PETG": "#F28C28", "TPU": "#202020", "ABS": "#F4F4F4", "ASA": "#C0392B"}


@dataclass(frozen=True)
class Capabilities:
    """What a simulated printer can do, as its firmware or host would say."""
    volume: tuple[float, float, float]  # x, y, z mm
    nozzle_mm: float = 0.4
    tools: int = 1  # extruders (nozzles)
    slots: int = 0  # AMS trays / MMU slots
    enclosed: bool = False
    nozzle_type: str = "brass"


CAPABILITIES = {  # by the inventory's model names (examples/fleet.toml); others get DEFAULT_CAPABILITIES
    "Prusa MK4": Capabilities((250.0, 210.0, 220.0)),
    "Prusa i3 MK3S+": Capabilities((250.0, 210.0, 210.0)),
    "Prusa MINI+": Capabilities((180.0, 180.0, 180.0)),
    "Prusa XL": Capabilities((360.0, 360.0, 360.0), tools=5),
    "Bambu Lab X1C": Capabilities((256.0, 256.0, 256.0), slots=4, enclosed=True, nozzle_type="hardened_steel"),
    "Bambu Lab P1S": Capabilities((256.0, 256.0, 256.0), slots=4, enclosed=True, nozzle_type="stainless_steel"),
    "Voron Trident": Capabilities((300.0, 300.0, 250.0), nozzle_mm=0.6, enclosed=True),
}
DEFAULT_CAPABILITIES = Capabilities((220.0, 220.0, 250.0))


def capabilities_of(model: str) -> Capabilities:
    return CAPABILITIES.get(model, DEFAULT_CAPABILITIES)


def grams_of(material: str, filament_mm: float) -> float:
    """The weight of ``filament_mm`` of 1.75 mm filament of ``material``, as a slicer computes it."""
    return round(filament_mm * FILAMENT_MM2 / 1000 * DENSITY.get(material, DENSITY["PLA"]), 2)


def material_in_gcode(gcode: bytes) -> str | None:
    """The slicer's ``; filament_type = PETG`` comment (PrusaSlicer, OrcaSlicer), if the file has one."""
    found = re.search(rb"^;\s*filament_type\s*=\s*([A-Za-z0-9+_-]+)", gcode, re.MULTILINE)
    return found.group(1).decode() if found else None
# --- end of material and capabilities -----------------------------------------------------------


class Heater:
    """First-order heating/cooling towards the target, computed in closed form."""

    __slots__ = ("target", "t0", "start", "tau", "wobble")

    def __init__(self, tau: float, wobble: float):
        self.target, self.t0, self.start, self.tau, self.wobble = 0.0, 0.0, AMBIENT, tau, wobble

    def _raw(self, now: float) -> float:
        goal = max(self.target, AMBIENT)
        return goal + (self.start - goal) * math.exp(-max(now - self.t0, 0.0) / self.tau)

    def actual(self, now: float) -> float:
        # A small deterministic ripple, like a PID holding temperature.
        return round(self._raw(now) + 0.3 * math.sin(now / 7.0 + self.wobble), 2)

    def set(self, target: float, now: float) -> None:
        self.start, self.target, self.t0 = self._raw(now), float(target), now


@dataclass
class Job:
    name: str
    size: int
    user: str | None
    started: float  # sim time the print began (heating included, as OctoPrint counts it)
    heat: float  # seconds of heating before the first move
    duration: float  # seconds of moves
    filament_mm: float
    tool: float
    bed: float
    date: int
    paused_total: float = 0.0
    paused_at: float | None = None
    resume_after: float | None = None  # seconds; None = waits for a person (or a resume call)
    milestones: list[tuple[float, str, str]] = field(default_factory=list)  # (elapsed, kind, detail)
    ended: str | None = None  # "done" | "cancelled" | "error"
    id: int = 0  # the printer's own job number (PrusaLink shows it; OctoPrint has none)
    # For printer APIs that keep a job history (Moonraker): when and why it ended ("print":
    # the G-code failed, "fault": the printer halted, "disconnect": its host went away).
    ended_at: float | None = None
    cause: str = ""
    why: str = ""
    material: str = "PLA"  # issue 23: the filament type the job prints with (its slicer's)

    @property
    def grams(self) -> float:
        return grams_of(self.material, self.filament_mm)

    def elapsed(self, now: float) -> float:
        until = self.paused_at if self.paused_at is not None else now
        return max(until - self.started - self.paused_total, 0.0)

    def completion(self, now: float) -> float:
        return min(max(self.elapsed(now) - self.heat, 0.0) / self.duration * 100.0, 100.0)

    @property
    def total(self) -> float:
        return self.heat + self.duration


class SimPrinter:
    """``auto`` printers live on their own (jobs, faults, nights); manual ones only obey calls."""

    def __init__(self, printer_id: str, rng: random.Random, now: float, site: SiteSchedule | None = None,
                 auto: bool = True, model: str = ""):
        self.id, self.rng, self.site, self.auto, self.model = printer_id, rng, site, auto, model
        self.capabilities = capabilities_of(model)  # issue 24
        self.loaded = "PLA"  # the material in the printer now: each job's own once it starts
        self.phase = "idle"
        self.job: Job | None = None  # the selected job: running, or the last one (done/cancelled)
        self.error = ""
        self.next_at = math.inf  # when an idle/off/error printer next changes on its own
        self.jobs_started = 0  # numbers the jobs (Job.id)
        # What printers with a screen tell besides the phase (PrusaLink shows all three):
        self.attention = False  # paused mid-print until a person answers the printer
        self.busy = False  # idle but busy (calibration, preheat): takes no job
        self.ready = False  # a person cleared the bed after the last job
        self.now = now
        self.history: list[Job] = []  # ended jobs, oldest first (the last HISTORY_KEEP)
        self.tool = Heater(tau=rng.uniform(20, 35), wobble=rng.uniform(0, 6.3))
        self.bed = Heater(tau=rng.uniform(70, 110), wobble=rng.uniform(0, 6.3))
        if auto:
            self._initial_state(now)

    # -- the timeline --------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        for _ in range(10_000):  # a bound, in case a bug schedules events at the same instant
            when, action = self._next_event()
            if when > now:
                break
            self.now = max(self.now, when)
            action(when)
        self.now = max(self.now, now)

    def _next_event(self):
        job = self.job
        if self.phase == "printing":
            elapsed, kind, detail = job.milestones[0]
            return job.started + job.paused_total + elapsed, lambda t: self._milestone(t, kind, detail)
        if self.phase == "paused" and job.resume_after is not None:
            return job.paused_at + job.resume_after, self._resume
        if self.auto and self.phase in ("idle", "off", "error"):
            return self.next_at, getattr(self, f"_{self.phase}_over")
        return math.inf, None

    def _milestone(self, t: float, kind: str, detail: str) -> None:
        self.job.milestones.pop(0)
        if kind == "done":
            self._finish(t, "done")
        elif kind == "cancel":
            self._finish(t, "cancelled")
        elif kind == "error":
            self._fault(t, detail)
        elif kind == "pause":
            self._pause(t, resume_after=float(detail) if detail else None)
        elif kind == "fail":  # the G-code failed: the job ends, the printer stays usable
            self._finish(t, "error", cause="print", why=detail)

    # -- what happens on its own ---------------------------------------------------------------
    def _initial_state(self, now: float) -> None:
        rng = self.rng
        open_now = self.site is None or self.site.is_open(now)
        roll = rng.random()
        if open_now and roll < 0.6 or not open_now and roll < 0.25:
            # Already mid-print when the simulation begins.
            self._start_job(now, self._random_job(now))
            head = rng.uniform(0.05, 0.9) * self.job.total
            self.job.started -= head
            self.job.milestones = [m for m in self.job.milestones if m[0] > head] or [(head + 1, "done", "")]
            self.tool.set(self.job.tool, now - 600)
            self.bed.set(self.job.bed, now - 600)
        elif open_now and roll < 0.64:
            self._fault(now, rng.choice(ERRORS))
        elif open_now and roll < 0.92:
            self._go_idle(now)
        else:
            self._switch_off(now)

    def _idle_over(self, t: float) -> None:
        if self.site is None or self.site.is_open(t):
            self._start_job(t, self._random_job(t))
        else:
            self._switch_off(t)

    def _off_over(self, t: float) -> None:
        self.phase, self.job, self.error = "idle", None, ""  # connecting clears the selection
        self.next_at = t + self.rng.uniform(2, 30) * MINUTE

    def _error_over(self, t: float) -> None:
        if self.site is not None and not self.site.is_open(t):
            self.next_at = self.site.next_open(t) + self.rng.uniform(5, 60) * MINUTE
            return
        self._off_over(t)  # someone cleared the fault and reconnected

    def _random_job(self, t: float) -> Job:
        rng = self.rng
        duration = min(max(rng.lognormvariate(math.log(80 * MINUTE), 0.8), 8 * MINUTE), 14 * 3600)
        material, tool, bed, _ = rng.choices(MATERIALS, weights=[m[3] for m in MATERIALS])[0]
        hours, minutes = divmod(int(duration // 60), 60)
        name = f"{rng.choice(PARTS)}_0.{rng.choice((15, 2, 2, 3))}mm_{material}_{hours}h{minutes}m.gcode"
        job = Job(name=name, size=int(duration * rng.uniform(300, 900)), user=rng.choice(USERS),
                  started=t, heat=rng.uniform(60, 240), duration=duration,
                  filament_mm=round(duration * rng.uniform(1.5, 4.0), 1), tool=tool, bed=bed, date=int(t),
                  material=material)
        job.milestones = self._plan(job)
        return job

    def _plan(self, job: Job) -> list[tuple[float, str, str]]:
        rng, end = self.rng, job.total
        roll = rng.random()
        if roll < 0.04:
            end, last = job.heat + job.duration * rng.uniform(0.05, 0.9), ("error", rng.choice(ERRORS))
        elif roll < 0.11:  # most cancels come early: a first layer that did not stick
            end, last = job.heat + job.duration * rng.uniform(0.01, 0.3), ("cancel", "")
        else:
            last = ("done", "")
        plan = [(end, *last)]
        if rng.random() < 0.12:  # filament run-out or a check by hand
            at = job.heat + job.duration * rng.uniform(0.2, 0.8)
            if at < end:
                plan.insert(0, (at, "pause", str(rng.uniform(3, 45) * MINUTE)))
        return plan

    # -- phase changes, shared by the timeline and the control API ----------------------------
    def _start_job(self, t: float, job: Job) -> None:
        self.phase, self.job, self.error, self.next_at = "printing", job, "", math.inf
        self.jobs_started += 1
        job.id, self.ready, self.busy = self.jobs_started, False, False
        self.loaded = job.material
        self.tool.set(job.tool, t)
        self.bed.set(job.bed, t)

    def _finish(self, t: float, how: str, cause: str = "", why: str = "") -> None:
        self._end_job(t, how, cause, why)
        self.attention = False
        self.tool.set(0, t)
        self.bed.set(0, t)
        self._go_idle(t)

    def _go_idle(self, t: float) -> None:
        self.phase = "idle"
        farm = self.site is not None and self.site.always_open
        self.next_at = t + self.rng.uniform(1, 10 if farm else 40) * MINUTE

    def _end_job(self, t: float, how: str, cause: str = "", why: str = "") -> None:
        job = self.job
        job.ended, job.ended_at, job.cause, job.why = how, t, cause, why
        self.history = self.history[-HISTORY_KEEP + 1:] + [job]

    def _fault(self, t: float, text: str) -> None:
        if self.phase in ("printing", "paused"):
            self._end_job(t, "error", "fault", text)
        self.phase, self.error, self.job = "error", text, None
        self.attention = self.busy = False
        self.tool.set(0, t)
        self.bed.set(0, t)
        self.next_at = t + self.rng.uniform(10, 90) * MINUTE

    def _switch_off(self, t: float) -> None:
        self.phase, self.job, self.error = "off", None, ""
        self.attention = self.busy = False
        self.tool.set(0, t)
        self.bed.set(0, t)
        reopen = self.site.next_open(t) if self.site is not None else t
        self.next_at = max(reopen, t + 30 * MINUTE) + self.rng.uniform(0, 45) * MINUTE

    def _pause(self, t: float, resume_after: float | None) -> None:
        self.phase = "paused"
        self.job.paused_at, self.job.resume_after = t, resume_after

    def _resume(self, t: float) -> None:
        job = self.job
        job.paused_total += t - job.paused_at
        job.paused_at = job.resume_after = None
        self.phase, self.attention = "printing", False

    # -- the control API (what a person or a test does through OctoPrint) ----------------------
    def print_file(self, now: float, name: str, gcode: bytes, user: str | None, pace: float = 0.022) -> None:
        self.advance(now)
        if self.phase in ("printing", "paused"):
            raise Conflict("Printer is already printing")
        if self.phase != "idle":
            raise Conflict("Printer is not operational")
        moves = sum(1 for line in gcode.splitlines() if line.startswith((b"G1 ", b"G0 ")))
        tool = _first_setpoint(gcode, (b"M104", b"M109"), 200.0)
        bed = _first_setpoint(gcode, (b"M140", b"M190"), 60.0)
        # The virtual printer spends ~22 ms per move of make_gcode(); mimic that pace.
        job = Job(name=name, size=len(gcode), user=user, started=now, heat=0.0,
                  duration=max(moves * pace, 0.5), filament_mm=round(moves * 2.0, 1), tool=tool, bed=bed,
                  date=int(now), material=material_in_gcode(gcode) or self.loaded)
        job.milestones = [(job.total, "done", "")]
        self._start_job(now, job)

    def cancel(self, now: float) -> None:
        self.advance(now)
        if self.phase not in ("printing", "paused"):
            raise Conflict("No active print job")
        self._finish(now, "cancelled")

    def pause(self, now: float, action: str) -> None:
        self.advance(now)
        if action == "toggle":
            action = "resume" if self.phase == "paused" else "pause"
        if action == "pause" and self.phase == "printing":
            self._pause(now, resume_after=None)
        elif action == "resume" and self.phase == "paused":
            self._resume(now)
        elif self.phase not in ("printing", "paused"):
            raise Conflict("Printer is neither printing nor paused")

    def connect(self, now: float) -> None:
        self.advance(now)
        if self.phase in ("off", "error"):
            self._off_over(now)

    def disconnect(self, now: float) -> None:
        self.advance(now)
        if self.phase in ("printing", "paused"):
            self._end_job(now, "error", "disconnect", "the printer's host went away")
        self.phase, self.job, self.error = "off", None, ""
        self.tool.set(0, now)
        self.bed.set(0, now)
        self.next_at = now + self.rng.uniform(5, 30) * MINUTE

    def fail(self, now: float, text: str) -> None:
        self.advance(now)
        if self.phase != "off":
            self._fault(now, text)

    def need_attention(self, now: float) -> None:
        """The print stops until a person answers the printer (crash, filament run-out)."""
        self.advance(now)
        if self.phase != "printing":
            raise Conflict("Printer is not printing")
        self._pause(now, resume_after=None)
        self.attention = True

    def set_busy(self, now: float, busy: bool) -> None:
        self.advance(now)
        if busy and self.phase != "idle":
            raise Conflict("Printer is not idle")
        self.busy = busy

    def set_ready(self, now: float) -> None:
        """A person cleared the bed: the last job is no longer shown."""
        self.advance(now)
        if self.phase != "idle":
            raise Conflict("Printer is not idle")
        self.ready = True


class Conflict(Exception):
    """The call does not fit the printer's state: OctoPrint answers 409."""


def _first_setpoint(gcode: bytes, codes: tuple[bytes, ...], default: float) -> float:
    for line in gcode.splitlines():
        if line.startswith(codes):
            found = re.search(rb"\bS(\d+(?:\.\d+)?)", line)
            if found:
                return float(found.group(1))
    return default
