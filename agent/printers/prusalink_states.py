"""PrusaLink's answers mapped onto a Snapshot: the v1 API and the legacy (OctoPrint-like) one.

Pure functions of the JSON the printer sent; any field may be missing, null or of the wrong type.
The two APIs count progress differently: v1 ``progress`` is 0–100, legacy ``completion`` 0–1.
"""

from __future__ import annotations

from agent.printers.base import Snapshot
from agent.printers.values import as_dict as _dict, clamp as _clamp, number as _number, text as _text

# v1 printer.state -> (printfarm state, how a job that was open has ended)
V1_STATES: dict[str, tuple[str, str | None]] = {
    "IDLE": ("idle", None),
    "READY": ("idle", None),  # someone marked the printer ready for the next job
    "PRINTING": ("printing", None),
    "PAUSED": ("paused", None),
    "FINISHED": ("idle", "done"),
    "STOPPED": ("idle", "cancelled"),  # a cancel, not a failure
    "ERROR": ("error", "failed"),
    # ATTENTION: see v1_state. Not a job ending (Prusa-Link's JOB_ENDING_STATES are FINISHED and
    # STOPPED): Buddy firmware says it for every filament change during a print and the print goes on.
}

# What ATTENTION means, for the person looking at the status (Buddy firmware has no text locally).
ATTENTION_REASON = ("waiting for a person at the printer (ATTENTION: filament change or run-out, "
                    "crash recovery or a question on its screen)")

# legacy /api/job state (firmware without v1) -> printfarm state
LEGACY_STATES = {
    "operational": "idle",  # also after a finished or cancelled job: the legacy API cannot tell
    "printing": "printing",
    "resuming": "printing",
    "crashrecovery": "printing",
    "pausing": "paused",
    "paused": "paused",
    "cancelling": "cancelling",
    "error": "error",
    "offline": "offline",
}


def v1_state(text: str, has_job: bool) -> tuple[str, str | None]:
    if text == "BUSY":  # crash recovery or power panic mid-print; calibration or preheat when idle
        return ("printing" if has_job else "idle"), None
    if text == "ATTENTION":
        # Buddy's printer_state.cpp: M600/run-out load-unload during a print, crash recovery,
        # power panic with a cold bed, print-preview questions. With a job the print is held
        # until someone answers, then resumes: paused, the job stays open. Without one nothing
        # is printing: idle (the reason still shows).
        return ("paused" if has_job else "idle"), None
    # An unknown text: better "error" (someone looks) than silently "idle".
    return V1_STATES.get(text, ("error", None))


def from_v1(ts: int, status: dict, file: str | None) -> Snapshot:
    """``/api/v1/status``; ``file`` is the current job's name from ``/api/v1/job``."""
    printer, job = _dict(status.get("printer")), _dict(status.get("job"))
    text = _text(printer.get("state")).upper() or "UNKNOWN"
    state, ended = v1_state(text, bool(job))
    snap = Snapshot(ts=ts, state=state, state_text=text, ended=ended, error=_error(text, state))
    snap.temps = _temps({"tool0": (printer.get("temp_nozzle"), printer.get("target_nozzle")),
                         "bed": (printer.get("temp_bed"), printer.get("target_bed"))})
    if job:
        snap.job_id = job_id(status)
        snap.progress = _clamp(_number(job.get("progress")), 0.0, 100.0)
        snap.print_time = _number(job.get("time_printing"))
        snap.time_left = _number(job.get("time_remaining"))
        snap.file = file
    return snap


def job_id(status: dict) -> str | None:
    value = _dict(status.get("job")).get("id")
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def job_file(job: dict | None) -> str | None:
    """The long name of ``/api/v1/job``'s file (``display_name``), else its 8.3 name."""
    file = _dict(_dict(job).get("file"))
    return _text(file.get("display_name") or file.get("name")) or None


def from_legacy(ts: int, printer: dict, job: dict) -> Snapshot:
    """``/api/printer`` + ``/api/job`` of firmware without the v1 API (or the Pi add-on)."""
    flags = _dict(_dict(printer.get("state")).get("flags"))
    file = _dict(_dict(job.get("job")).get("file"))
    name = _text(file.get("display") or file.get("name")) or None
    link = _text(flags.get("link_state")).upper()
    if link in V1_STATES or link in ("BUSY", "ATTENTION"):  # newer firmware says what v1 would say
        text = link
        state, ended = v1_state(link, name is not None)
    else:
        text = _text(job.get("state")) or _text(_dict(printer.get("state")).get("text")) or "Unknown"
        state, ended = LEGACY_STATES.get(text.lower(), "error"), None
        if text.lower() == "busy":
            state = "printing" if name else "idle"
    snap = Snapshot(ts=ts, state=state, state_text=text, ended=ended, error=_error(text, state))
    temps = _dict(printer.get("temperature"))
    snap.temps = _temps({k: (_dict(temps.get(k)).get("actual"), _dict(temps.get(k)).get("target"))
                         for k in ("tool0", "bed") if k in temps})
    progress = _dict(job.get("progress"))
    completion = _number(progress.get("completion"))  # 0–1 here, not 0–100
    snap.progress = _clamp(round(completion * 100.0, 2), 0.0, 100.0) if completion is not None else None
    snap.print_time = _number(progress.get("printTime"))
    snap.time_left = _number(progress.get("printTimeLeft"))
    snap.file = name
    return snap


def _error(text: str, state: str) -> str | None:
    if text == "ATTENTION":
        return ATTENTION_REASON
    return text if state == "error" else None  # Buddy firmware sends no error text


def _temps(pairs: dict[str, tuple]) -> dict[str, tuple[float | None, float | None]]:
    out = {}
    for name, (actual, target) in pairs.items():
        actual, target = _number(actual), _number(target)
        if actual is not None or target is not None:
            out[name] = (actual, target)
    return out
