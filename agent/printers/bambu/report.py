"""A Bambu printer's report stream folded into one state, and that state in printfarm's terms.

Reports arrive on ``device/<serial>/report`` as JSON; the status lives under ``print``. An X1
sends the whole object every time; P1 and A1 send only the fields that changed since their
previous report (OpenBambuAPI, mqtt.md, "print.push_status"), so every report is merged into
what we hold. We keep only the fields we map: a full X1 report is several kilobytes of AMS,
camera and upgrade details we never read, and msgspec skips those without building them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agent.printers.bambu import errors
from agent.printers.values import clamp, number, text

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
    "FAILED": ("error", "failed"),  # ... and FAILED too; a cancel is FAILED with a cancel code
}


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

    def merge(self, fields: dict) -> None:
        self.values.update(fields)

    def normalised(self) -> tuple[str, str, str | None, str | None]:
        """(state, state_text, error, ended) from gcode_state and the error codes."""
        raw = text(self.values.get("gcode_state")).upper()
        if raw not in STATES:
            # Unknown to us: say so rather than guess; "unreachable" neither starts nor ends jobs.
            why = f"unknown gcode_state {raw!r}" if raw else "no gcode_state reported yet"
            return "unreachable", why, why, None
        state, ended = STATES[raw]
        code = self._print_error()
        if raw == "FAILED" and code in errors.CANCEL_CODES:
            return "idle", raw, None, "cancelled"
        if raw == "FAILED":
            return state, raw, self.error_text() or "print failed (the printer gave no error code)", ended
        if raw == "PAUSE" and code:
            return state, raw, errors.describe_print_error(code), None  # why it paused
        return state, raw, None, ended

    def error_text(self) -> str:
        parts = []
        code = self._print_error()
        if code:
            parts.append(errors.describe_print_error(code))
        mc_code = _int(self.values.get("mc_print_error_code"))
        if mc_code and mc_code != code:
            parts.append(errors.describe_print_error(mc_code))
        parts += [errors.describe_hms(attr, code) for attr, code in self._hms()]
        return "; ".join(parts)[:500]

    def _print_error(self) -> int:
        return _int(self.values.get("print_error")) or 0

    def _hms(self) -> list[tuple[int, int]]:
        entries = self.values.get("hms")
        if not isinstance(entries, list):
            return []
        pairs = [(_int(e.get("attr")), _int(e.get("code"))) for e in entries if isinstance(e, dict)]
        return [(a, c) for a, c in pairs if a is not None and c is not None]

    # -- the numbers ---------------------------------------------------------------------------
    def temps(self, chamber: bool) -> dict[str, tuple[float | None, float | None]]:
        v = self.values
        temps = {"tool0": (_num(v.get("nozzle_temper")), _num(v.get("nozzle_target_temper"))),
                 "bed": (_num(v.get("bed_temper")), _num(v.get("bed_target_temper")))}
        if chamber and _num(v.get("chamber_temper")) is not None:
            temps["chamber"] = (_num(v["chamber_temper"]), None)
        return {k: t for k, t in temps.items() if t != (None, None)}

    def progress(self) -> float | None:
        return clamp(_num(self.values.get("mc_percent")), 0.0, 100.0)

    def time_left(self) -> float | None:
        minutes = _num(self.values.get("mc_remaining_time"))
        return None if minutes is None or minutes < 0 else minutes * 60.0

    def layers(self) -> tuple[int | None, int | None]:
        layer, total = _int(self.values.get("layer_num")), _int(self.values.get("total_layer_num"))
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
        started = _int(self.values.get("gcode_start_time"))
        return f"start:{started}" if started else None


def _num(value) -> float | None:
    """values.number(), also for numbers sent as strings (the firmware sends both)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return number(value)


def _int(value) -> int | None:
    value = _num(value)
    return int(value) if value is not None and value.is_integer() else None


def _id(value) -> str:
    """A task id, sent as text or as a number."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else text(value)
