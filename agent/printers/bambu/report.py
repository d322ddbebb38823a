"""A Bambu printer's report stream folded into one state, and that state in printfarm's terms.

Reports arrive on ``device/<serial>/report`` as JSON; the status lives under ``print``. An X1
sends the whole object every time; P1 and A1 send only the fields that changed since their
previous report (OpenBambuAPI, mqtt.md, "print.push_status"), so every report is merged into
what we hold. We keep only the fields we map: a full X1 report is several kilobytes of camera,
upgrade and calibration details we never read, and msgspec skips those without building them
(the AMS we keep: the trays' materials are what the printer has loaded, capabilities.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from agent.printers.bambu import errors
from agent.printers.values import clamp, loose_int, loose_number, text

UNSET = msgspec.UNSET


class _Print(msgspec.Struct):
    """The fields of ``print`` we read; anything else in a report is skipped unparsed."""

    gcode_state: Any = UNSET
    mc_percent: Any = UNSET
    mc_remaining_time: Any = UNSET  # minutes
    layer_num: Any = UNSET
    total_layer_num: Any = UNSET
    nozzle_temper: Any = UNSET
    nozzle_target_temper: Any = UNSET
    bed_temper: Any = UNSET
    bed_target_temper: Any = UNSET
    chamber_temper: Any = UNSET
    subtask_name: Any = UNSET
    gcode_file: Any = UNSET
    print_error: Any = UNSET
    mc_print_error_code: Any = UNSET
    hms: Any = UNSET
    task_id: Any = UNSET
    subtask_id: Any = UNSET
    gcode_start_time: Any = UNSET
    fail_reason: Any = UNSET  # newer firmware: the code of the last job's end, kept after print_error clears
    device: Any = UNSET  # newer firmware (X1C 01.09+, H2*, P2S): ctc (chamber), extruder (nozzles)
    ams: Any = UNSET  # AMS units and their trays, tray_now (capabilities.py)
    vt_tray: Any = UNSET  # the external spool
    vir_slot: Any = UNSET  # the external spools of H2 printers
    nozzle_diameter: Any = UNSET
    nozzle_type: Any = UNSET


class _Report(msgspec.Struct):
    print: _Print | None = None  # other report types (info, mc_print, ...) carry no print


FIELDS = _Print.__struct_fields__
_decoder = msgspec.json.Decoder(_Report)

# gcode_state -> (state, the printer's own word for how the job ended)
STATES = {
    "IDLE": ("idle", None),
    "SLICING": ("printing", None),  # cloud slicing before a job: the job is under way
    "PREPARE": ("printing", None),  # heating, levelling, loading the file
    "RUNNING": ("printing", None),
    "PAUSE": ("paused", None),
    "FINISH": ("idle", "done"),  # stays FINISH until the next job
    "FAILED": ("error", "failed"),  # ... and FAILED too; see PrintState.normalised
    "INIT": ("idle", None),  # starting up: nothing is printing
    "OFFLINE": ("offline", None),
}
JOB_STATES = frozenset({"SLICING", "PREPARE", "RUNNING"})  # entering one of these begins (or resumes) a job
CHAMBER_PLACEHOLDER = 5  # P1 and A1 have no chamber sensor and send this constant


def decode(payload: bytes) -> dict | None:
    """The ``print`` fields a report carries (only those present); ``{}`` for a report of another
    kind. Raises msgspec.DecodeError/ValidationError for something that is not a report."""
    report = _decoder.decode(payload)
    if report.print is None:
        return {}
    fields = report.print
    return {name: value for name in FIELDS if (value := getattr(fields, name)) is not UNSET}


class PrintState:
    """Everything the printer told us so far, merged report by report."""

    def __init__(self):
        self.values: dict[str, Any] = {}
        # The last error code of this job. A cancel's print_error (50348044) lasts a couple of
        # seconds, then is 0 while gcode_state stays FAILED until the next job (pybambu
        # models.py print_update; captures P1P.json, MOCK-H2C.json): remembered here.
        self._code: int | None = None
        self._saw_end = False  # the job was seen going from under way to FAILED (not found FAILED)

    def merge(self, fields: dict) -> None:
        before = text(self.values.get("gcode_state")).upper()
        device = fields.get("device")
        if isinstance(device, dict) and isinstance(self.values.get("device"), dict):
            fields = {**fields, "device": _merge_device(self.values["device"], device)}
        ams = fields.get("ams")
        if isinstance(ams, dict) and isinstance(self.values.get("ams"), dict):  # P1/A1: tray_now alone
            fields = {**fields, "ams": {**self.values["ams"], **ams}}
        self.values.update(fields)
        now = text(self.values.get("gcode_state")).upper()
        if now in JOB_STATES and before not in JOB_STATES:
            self._code = None  # a new job (or a resume): earlier codes are not its end
        code = loose_int(fields.get("print_error"))
        if code and now != "PAUSE":  # a pause's code is why it paused, not how the job ended
            self._code = code
        if now != "FAILED":
            self._saw_end = False
        elif before != "FAILED":
            self._saw_end = before in JOB_STATES or before == "PAUSE"

    def normalised(self) -> tuple[str, str, str | None, str | None]:
        """(state, state_text, error, ended) from gcode_state and the error codes."""
        value = self.values.get("gcode_state")
        raw = text(value).upper()
        if raw == "" and isinstance(value, str):
            return "idle", "", None, None  # sent empty at power-on, before any job (pybambu: no error)
        if raw not in STATES:
            # Unknown to us: say so rather than guess; "unreachable" neither starts nor ends jobs.
            why = f"unknown gcode_state {raw!r}" if raw else "no gcode_state reported yet"
            return "unreachable", why, why, None
        state, ended = STATES[raw]
        code = self._print_error()
        if raw == "FAILED":
            return self._failed()
        if raw == "PAUSE" and code:
            return state, raw, errors.describe_print_error(code), None  # why it paused
        return state, raw, None, ended

    def _failed(self) -> tuple[str, str, str | None, str | None]:
        """FAILED stays until the next job, for a cancel as for a failure. A cancel is known by its
        code, now or earlier in this job, or by fail_reason; the code comes with the change to
        FAILED (pybambu tells a cancel from a failure within that one report). Found FAILED with
        no code at all (after a connect): a cancel whose transient code has cleared, as both
        captures of that state are. Seen ending with no code: the printer stopped the job."""
        code = self.end_code()
        if code in errors.CANCEL_CODES or not (code or self._hms() or self._saw_end):
            return "idle", "FAILED", None, "cancelled"
        text = self.error_text(code) or "the printer ended the job without an error code (see its screen)"
        if not (self._print_error() or self._hms()):  # no code shown (any more): ready again
            return "idle", "FAILED", text, "failed"
        return "error", "FAILED", text, "failed"

    def end_code(self) -> int:
        """The code that ended the job: print_error now, else the one seen before it cleared, else
        fail_reason (kept by newer firmware until the next job)."""
        return self._print_error() or self._code or loose_int(self.values.get("fail_reason")) or 0

    def error_text(self, code: int | None = None) -> str:
        parts = []
        code = code or self._print_error()
        if code:
            parts.append(errors.describe_print_error(code))
        mc_code = loose_int(self.values.get("mc_print_error_code"))
        if mc_code and mc_code != code:
            parts.append(errors.describe_print_error(mc_code))
        parts += [errors.describe_hms(attr, code) for attr, code in self._hms()]
        return "; ".join(parts)[:500]

    def _print_error(self) -> int:
        return loose_int(self.values.get("print_error")) or 0

    def _hms(self) -> list[tuple[int, int]]:
        entries = self.values.get("hms")
        if not isinstance(entries, list):
            return []
        pairs = [(loose_int(e.get("attr")), loose_int(e.get("code"))) for e in entries if isinstance(e, dict)]
        return [(a, c) for a, c in pairs if a is not None and c is not None]

    # -- the numbers ---------------------------------------------------------------------------
    def temps(self, chamber: bool | None) -> dict[str, tuple[float | None, float | None]]:
        """``chamber``: the model has a chamber sensor (True), has none (False), or is not known."""
        v = self.values
        temps = self._nozzles() or {"tool0": (loose_number(v.get("nozzle_temper")), loose_number(v.get("nozzle_target_temper")))}
        temps["bed"] = (loose_number(v.get("bed_temper")), loose_number(v.get("bed_target_temper")))
        if chamber is not False:
            temps["chamber"] = self._chamber(placeholder_possible=chamber is None)
        return {k: t for k, t in temps.items() if t != (None, None)}

    def _device(self, part: str) -> dict:
        device = self.values.get("device")
        value = device.get(part) if isinstance(device, dict) else None
        return value if isinstance(value, dict) else {}

    def _nozzles(self) -> dict[str, tuple[float | None, float | None]]:
        """Each nozzle of ``device.extruder.info`` (two on an H2D) as tool<id>: the top-level
        nozzle_temper is then one of them, not necessarily the one printing."""
        info = self._device("extruder").get("info")
        nozzles = {}
        for entry in info if isinstance(info, list) else ():
            nozzle = loose_int(entry.get("id")) if isinstance(entry, dict) else None
            if nozzle is not None and 0 <= nozzle <= 9 and _packed(entry.get("temp")) is not None:
                nozzles[f"tool{nozzle}"] = _packed(entry["temp"])
        return nozzles

    def active_nozzle(self) -> int | None:
        """The nozzle printing: bits 4-7 of ``device.extruder.state`` (the low 4 are the count)."""
        state = loose_int(self._device("extruder").get("state"))
        return None if state is None else state >> 4 & 0xF

    def _chamber(self, placeholder_possible: bool) -> tuple[float | None, float | None]:
        info = self._device("ctc").get("info")
        packed = _packed(info.get("temp"), no_target=None) if isinstance(info, dict) else None
        if packed is not None:
            return packed  # X1C firmware 01.09+, H2D, H2S, P2S: current | target << 16
        value = loose_number(self.values.get("chamber_temper"))
        if value is None or (placeholder_possible and value == CHAMBER_PLACEHOLDER):
            return (None, None)
        return (value, None)

    def progress(self) -> float | None:
        return clamp(loose_number(self.values.get("mc_percent")), 0.0, 100.0)

    def time_left(self) -> float | None:
        minutes = loose_number(self.values.get("mc_remaining_time"))
        return None if minutes is None or minutes < 0 else minutes * 60.0

    def layers(self) -> tuple[int | None, int | None]:
        layer, total = loose_int(self.values.get("layer_num")), loose_int(self.values.get("total_layer_num"))
        return (layer, total) if total else (None, None)  # 0 of 0 means "no job"

    def file(self) -> str | None:
        name = text(self.values.get("subtask_name")) or text(self.values.get("gcode_file"))
        return name.rsplit("/", 1)[-1] or None if name else None

    def job_id(self) -> str | None:
        """The printer's identity of the job: its task ids for jobs sent through Bambu's cloud,
        else the moment it started (LAN jobs carry task id 0), which survives our restarts."""
        task = _id(self.values.get("task_id")) or "0"
        subtask = _id(self.values.get("subtask_id")) or "0"
        if task != "0" or subtask != "0":
            return f"task:{task}/{subtask}"
        started = loose_int(self.values.get("gcode_start_time"))
        return f"start:{started}" if started else None


def _merge_device(old: dict, new: dict) -> dict:
    """A partial ``device`` report into the one held: its parts replace ours, except that the
    nozzles of ``extruder.info`` are merged by id (pybambu updates them entry by entry)."""
    merged = {**old, **new}
    before, after = old.get("extruder"), new.get("extruder")
    if isinstance(before, dict) and isinstance(after, dict):
        nozzles = {}
        for info in (before.get("info"), after.get("info")):
            for entry in info if isinstance(info, list) else ():
                if isinstance(entry, dict) and loose_int(entry.get("id")) is not None:
                    nozzles[loose_int(entry["id"])] = entry
        merged["extruder"] = {**before, **after, "info": list(nozzles.values())}
    return merged


def _packed(value, no_target: float | None = 0.0) -> tuple[float, float | None] | None:
    """Bambu's packed temperature: current in the low 16 bits, target in the high 16."""
    value = loose_int(value)
    if value is None or value < 0:
        return None
    target = value >> 16 & 0xFFFF
    return float(value & 0xFFFF), float(target) if target else no_target




def _id(value) -> str:
    """A task id, sent as text or as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else text(value)
