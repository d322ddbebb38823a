"""PrusaLink's JSON answers, built from a SimPrinter (field names and states of Prusa's OpenAPI
specs, shaped like Buddy firmware 6.x sends them; checked against the specs in
tests/integration/test_prusalink_spec.py)."""

from __future__ import annotations

import zlib

from devkit.sim.model import SimPrinter

FIRMWARE = "6.2.4+8880"
LEGACY_FIRMWARE = "4.6.4+6510"  # before the v1 API (4.7.0; MINI 5.1.0)


def version(p: SimPrinter, legacy: bool) -> dict:
    # Buddy's get_version (lib/WUI/link_content/basic_gets.cpp) also tells the nozzle diameter.
    if legacy:
        return {"api": "0.1", "server": "2.1.2", "text": "PrusaLink", "firmware": LEGACY_FIRMWARE,
                "hostname": _hostname(p), "nozzle_diameter": 0.4}
    return {"api": "2.0.0", "server": "2.1.2", "version": "2.1.2", "printer": "1.0.0", "text": "PrusaLink",
            "firmware": FIRMWARE, "hostname": _hostname(p), "nozzle_diameter": 0.4,
            "capabilities": {"upload-by-put": True}}


def info(p: SimPrinter) -> dict:
    return {"name": p.id, "location": "", "farm_mode": False, "mmu": False, "nozzle_diameter": 0.4,
            "min_extrusion_temp": 170, "serial": f"SIM{zlib.crc32(p.id.encode()):012d}", "sd_ready": True,
            "hostname": _hostname(p), "network_error_chime": False}


def link_state(p: SimPrinter) -> str:
    """The v1 ``printer.state`` of the printer now."""
    if p.phase == "error":
        return "ERROR"
    if p.phase == "printing":
        return "PRINTING"
    if p.phase == "paused":
        return "ATTENTION" if p.attention else "PAUSED"
    if p.busy:
        return "BUSY"
    if p.ready or p.job is None:
        return "READY" if p.ready else "IDLE"
    return {"done": "FINISHED", "cancelled": "STOPPED"}.get(p.job.ended, "IDLE")


def has_job(p: SimPrinter) -> bool:
    # Buddy firmware: only a job under way is a job; FINISHED and STOPPED have none.
    return p.phase in ("printing", "paused") and p.job is not None


def status(p: SimPrinter, now: float) -> dict:
    printer = {"state": link_state(p), "temp_nozzle": p.tool.actual(now), "target_nozzle": p.tool.target,
               "temp_bed": p.bed.actual(now), "target_bed": p.bed.target, "axis_z": 0.2 if has_job(p) else 10.0,
               "flow": 100, "speed": 100, "fan_hotend": 3200 if p.tool.target else 0,
               "fan_print": 4100 if has_job(p) else 0}
    out = {"storage": {"path": "/usb/", "name": "usb", "read_only": False}, "printer": printer}
    if has_job(p):
        out["job"] = _job_numbers(p, now)
    return out


def job(p: SimPrinter, now: float) -> dict:
    """``/api/v1/job`` while ``has_job(p)``."""
    j = p.job
    out = _job_numbers(p, now)
    out["state"] = "PAUSED" if p.phase == "paused" else "PRINTING"  # ATTENTION shows as PAUSED here
    out["file"] = {"name": short_name(j.name), "display_name": j.name, "path": "/usb", "display_path": "/usb",
                   "size": j.size, "m_timestamp": j.date,
                   "refs": {"download": f"/usb/{short_name(j.name)}", "icon": f"/thumb/s/usb/{short_name(j.name)}",
                            "thumbnail": f"/thumb/l/usb/{short_name(j.name)}"}}
    return out


def _job_numbers(p: SimPrinter, now: float) -> dict:
    j = p.job
    elapsed = j.elapsed(now)
    return {"id": j.id, "progress": float(int(j.completion(now))), "time_remaining": int(max(j.total - elapsed, 0)),
            "time_printing": int(elapsed)}


def legacy_printer(p: SimPrinter, now: float, link: bool) -> dict:
    """``/api/printer``; ``link``: newer firmware adds the v1 state as ``flags.link_state``."""
    printing, paused = p.phase in ("printing", "paused"), p.phase == "paused"
    flags = {"operational": not printing, "paused": paused, "printing": printing, "cancelling": False,
             "pausing": False, "error": p.attention or p.phase == "error", "sdReady": False,
             "closedOrError": False, "ready": not printing, "busy": p.busy or p.attention}
    if link:
        flags["link_state"] = link_state(p)
    return {
        "telemetry": {"temp-bed": p.bed.actual(now), "temp-nozzle": p.tool.actual(now), "print-speed": 100,
                      "z-height": 0.2 if printing else 10.0, "material": loaded(p)},
        "temperature": {"tool0": {"actual": p.tool.actual(now), "target": p.tool.target, "offset": 0},
                        "bed": {"actual": p.bed.actual(now), "target": p.bed.target, "offset": 0}},
        "state": {"text": "Printing" if printing else "Operational", "flags": flags},
    }


def loaded(p: SimPrinter) -> str:
    """The material loaded: the last job's (the simulator names jobs "..._PETG_..."), PLA at first."""
    return next((m for m in DENSITY if p.job is not None and f"_{m}_" in p.job.name), "PLA")


def legacy_job(p: SimPrinter, now: float) -> dict:
    """``/api/job``. Idle: "Operational" with nulls — after a finished job just the same."""
    if not has_job(p):
        state = "Error" if p.phase == "error" else "Operational"
        return {"state": state, "job": {"estimatedPrintTime": None, "file": {"name": None, "path": None,
                                                                                "display": None}},
                "progress": {"completion": None, "printTime": None, "printTimeLeft": None}}
    j, numbers = p.job, _job_numbers(p, now)
    state = "Error" if p.attention else ("Paused" if p.phase == "paused" else "Printing")
    return {
        "state": state,
        "job": {"estimatedPrintTime": int(j.total),
                "file": {"name": j.name, "path": f"/usb/{short_name(j.name)}", "display": j.name}},
        "progress": {"completion": round(numbers["progress"] / 100.0, 2),  # 0–1 here, 0–100 in v1
                     "printTime": numbers["time_printing"], "printTimeLeft": numbers["time_remaining"]},
    }


def uploaded(name: str) -> dict:
    return {"done": True, "files": {"local": {"name": name, "origin": "local", "path": f"/usb/{short_name(name)}",
                                              "refs": {"resource": f"/api/files/local/{name}"}}}}


def error(status: int, title: str, text: str) -> dict:
    return {"code": str(status), "title": title, "text": text}


def short_name(name: str) -> str:
    """The 8.3 name FAT gives a long file name on the printer's USB stick."""
    stem = "".join(c for c in name.rsplit(".", 1)[0].upper() if c.isalnum())[:6] or "FILE"
    return f"{stem}~1.GCO"


def _hostname(p: SimPrinter) -> str:
    return f"{p.id}.local"


# -- print files and their metadata -------------------------------------------------------------
# Buddy firmware's own HTTP server renders no ``meta`` for a file (lib/WUI/nhttp/file_info.cpp:
# name, ro, type, m_timestamp, size, refs, display_name); Prusa-Link (the Pi add-on) adds the
# ``meta`` its G-code parser (py-gcode-metadata FDMMetaData) reads from the slicer's comments,
# and so does this stand-in: an agent must cope with both.

MMU_KEYS = {"filament used [g]": float, "filament used [mm]": float, "filament used [cm3]": float,
            "filament cost": float, "filament_type": str, "nozzle_diameter": float}
DENSITY = {"PLA": 1.24, "PETG": 1.27, "TPU": 1.21, "ABS": 1.04, "ASA": 1.07}
FILAMENT_AREA = 3.14159265 * 0.875 ** 2  # mm2 of 1.75 mm filament


def gcode_meta(gcode: bytes) -> dict:
    """The meta Prusa-Link serves for a G-code: ``; key = value`` comments, the multi-tool keys
    as the sum (numbers) or the common value (type) plus ``<key> per tool`` lists."""
    meta: dict = {}
    for raw in gcode.decode("utf-8", "replace").splitlines():
        if not raw.startswith("; ") or " = " not in raw:
            continue
        key, value = raw[2:].split(" = ", 1)
        kind = MMU_KEYS.get(key)
        if kind is None:
            continue
        parts = [p.strip() for p in value.split(";" if kind is str else ",")]
        try:
            values = [kind(p) for p in parts]
        except ValueError:
            continue
        meta[f"{key} per tool"] = values
        if kind is float and key != "nozzle_diameter":
            meta[key] = round(sum(values), 4)
        elif len(set(values)) == 1:
            meta[key] = values[0]
    return meta


def simulated_meta(job) -> dict:
    """A simulated job's meta (no G-code behind it): its material from its name, its length."""
    material = next((m for m in DENSITY if f"_{m}_" in job.name), "PLA")
    grams = round(job.filament_mm * FILAMENT_AREA / 1000 * DENSITY[material], 2)
    return {"filament used [mm]": job.filament_mm, "filament used [mm] per tool": [job.filament_mm],
            "filament used [g]": grams, "filament used [g] per tool": [grams], "filament_type": material,
            "filament_type per tool": [material], "estimated_print_time": int(job.total)}


def print_file(name: str, size: int, timestamp: int, meta: dict | None) -> dict:
    """``/api/v1/files/usb/<8.3 name>`` of a print file."""
    short = short_name(name)
    out = {"name": short, "ro": False, "read_only": False, "type": "PRINT_FILE", "m_timestamp": timestamp,
           "size": size, "refs": {"icon": f"/thumb/s/usb/{short}", "thumbnail": f"/thumb/l/usb/{short}",
                                  "download": f"/usb/{short}"}, "display_name": name}
    if meta is not None:
        out["meta"] = meta
    return out
