"""OctoPrint 1.11's JSON answers, built from a SimPrinter (field names as the real server sends)."""

from __future__ import annotations

from devkit.sim.model import SimPrinter

VERSION = {"api": "0.1", "server": "1.11.8", "text": "OctoPrint 1.11.8"}
FORBIDDEN = {"error": "You don't have the permission to access the requested resource. "
                      "It is either read-protected or not readable by the server."}
NOT_OPERATIONAL = {"error": "Printer is not operational"}

_TEXT = {"off": "Offline", "idle": "Operational", "printing": "Printing", "paused": "Paused",
         "error": "Offline after error"}
_NO_FILE = {"date": None, "display": None, "name": None, "origin": None, "path": None, "size": None}
_NO_PROGRESS = {"completion": None, "filepos": None, "printTime": None, "printTimeLeft": None,
                "printTimeLeftOrigin": None}


def state_text(p: SimPrinter) -> str:
    return _TEXT[p.phase]


def job(p: SimPrinter, now: float) -> dict:
    out = {"job": _job_block(p), "progress": _progress(p, now), "state": state_text(p)}
    if p.phase == "error":
        out["error"] = p.error
    return out


def _job_block(p: SimPrinter) -> dict:
    j = p.job
    if j is None:
        return {"averagePrintTime": None, "estimatedPrintTime": None, "filament": None,
                "file": dict(_NO_FILE), "lastPrintTime": None, "user": None}
    last = round(j.total, 2) if j.ended == "done" else None
    return {
        "averagePrintTime": last,
        "estimatedPrintTime": round(j.total, 2),
        "filament": {"tool0": {"length": j.filament_mm, "volume": round(j.filament_mm * 0.0024, 2)}},
        "file": {"date": j.date, "display": j.name, "name": j.name, "origin": "local", "path": j.name,
                 "size": j.size},
        "lastPrintTime": last,
        "user": j.user,
    }


def _progress(p: SimPrinter, now: float) -> dict:
    j = p.job
    if j is None or j.ended in ("cancelled", "error"):
        return dict(_NO_PROGRESS)  # OctoPrint forgets the progress of a cancelled print
    completion = 100.0 if j.ended == "done" else j.completion(now)
    elapsed = j.total if j.ended == "done" else j.elapsed(now)
    return {
        "completion": completion,
        "filepos": int(j.size * completion / 100),
        "printTime": int(elapsed),
        "printTimeLeft": 0 if j.ended == "done" else int(max(j.total - elapsed, 0)),
        "printTimeLeftOrigin": None if j.ended == "done" else "estimate",
    }


def printer(p: SimPrinter, now: float, exclude: set[str]) -> tuple[int, dict]:
    if p.phase in ("off", "error"):
        return 409, NOT_OPERATIONAL
    printing, paused = p.phase == "printing", p.phase == "paused"
    out: dict = {}
    if "state" not in exclude:
        out["state"] = {
            "error": "",
            "flags": {"cancelling": False, "closedOrError": False, "error": False, "finishing": False,
                      "operational": True, "paused": paused, "pausing": False, "printing": printing,
                      "ready": not (printing or paused), "resuming": False, "sdReady": True},
            "text": state_text(p),
        }
    if "temperature" not in exclude:
        out["temperature"] = {
            "bed": {"actual": p.bed.actual(now), "offset": 0, "target": p.bed.target},
            "tool0": {"actual": p.tool.actual(now), "offset": 0, "target": p.tool.target},
        }
    if "sd" not in exclude:
        out["sd"] = {"ready": True}
    return 200, out


def printer_profiles(p: SimPrinter) -> dict:
    """``/api/printerprofiles``: one profile, current and default, from the printer's capabilities."""
    caps = p.capabilities
    width, depth, height = caps.volume
    profile = {"id": "_default", "name": p.model or "Default", "model": p.model or "Generic RepRap Printer",
               "color": "default", "current": True, "default": True, "heatedBed": True,
               "heatedChamber": caps.enclosed, "resource": "/api/printerprofiles/_default",
               "volume": {"width": width, "depth": depth, "height": height, "formFactor": "rectangular",
                          "origin": "lowerleft", "custom_box": False},
               "extruder": {"count": caps.tools, "nozzleDiameter": caps.nozzle_mm, "sharedNozzle": False,
                            "offsets": [[0.0, 0.0]] * caps.tools, "defaultExtrusionLength": 5}}
    return {"profiles": {"_default": profile}}


def connection(p: SimPrinter) -> dict:
    connected = p.phase not in ("off", "error")
    return {
        "current": {"baudrate": 115200 if connected else None, "port": "VIRTUAL" if connected else None,
                    "printerProfile": "_default", "state": state_text(p) if connected else "Closed"},
        "options": {"baudratePreference": 115200, "baudrates": [250000, 230400, 115200, 57600, 38400, 19200, 9600],
                    "portPreference": "VIRTUAL", "ports": ["VIRTUAL"], "printerProfilePreference": "_default",
                    "printerProfiles": [{"id": "_default", "name": "Default"}]},
    }
