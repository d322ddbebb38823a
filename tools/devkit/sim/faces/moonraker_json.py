"""What the simulated Moonraker says: printer objects, Klippy's state and history entries,
built from one ``SimPrinter`` (Moonraker 0.11 with Klipper, the fields the agent reads)."""

from __future__ import annotations

from devkit.sim.clock import SimClock
from devkit.sim.model import COLOURS, Job, SimPrinter

NO_USER = "_TRUSTED_USER_"
BOARD_OFF = "mcu 'mcu': Unable to connect"
PRINT_STATS = {"printing": "printing", "paused": "paused"}
ENDED = {"done": "complete", "cancelled": "cancelled", "error": "error"}
HISTORY_STATUS = {"done": "completed", "cancelled": "cancelled"}
CAUSE_STATUS = {"fault": "klippy_shutdown", "disconnect": "klippy_disconnect", "print": "error"}


def klippy(p: SimPrinter, face: dict) -> tuple[str, str]:
    """(Klippy's state, its message): Klipper killed, board switched off, halted or ready."""
    if face.get("klippy_down"):
        return "disconnected", "Klippy Disconnected"
    if p.phase == "off":
        return "error", BOARD_OFF
    if p.phase == "error":
        return "shutdown", p.error
    return "ready", "Printer is ready"


def objects(p: SimPrinter, now: float, face: dict) -> dict[str, dict]:
    state, message = klippy(p, face)
    out = {"webhooks": {"state": state, "state_message": message}}
    if state == "disconnected":
        return out
    out["extruder"] = {"temperature": p.tool.actual(now), "target": p.tool.target}
    out["heater_bed"] = {"temperature": p.bed.actual(now), "target": p.bed.target}
    out.update(_job_objects(p, now))
    return out


def _job_objects(p: SimPrinter, now: float) -> dict[str, dict]:
    j = p.job
    if j is None or p.phase in ("off", "error"):
        stats = {"state": "standby", "filename": "", "message": "", "print_duration": 0.0,
                 "total_duration": 0.0, "filament_used": 0.0}
        return {"print_stats": stats, "virtual_sdcard": {"progress": 0.0, "is_active": False},
                "display_status": {"progress": 0.0}}
    done = j.ended == "done"
    progress = 1.0 if done else round(j.completion(now) / 100, 4)
    elapsed = j.total if done else j.elapsed(now)
    stats = {"state": PRINT_STATS.get(p.phase) or ENDED.get(j.ended, "standby"), "filename": j.name,
             "message": j.why if j.ended == "error" else "", "print_duration": round(elapsed, 2),
             "total_duration": round(elapsed + j.paused_total, 2), "filament_used": round(progress * j.filament_mm, 1)}
    return {"print_stats": stats, "virtual_sdcard": {"progress": progress, "is_active": p.phase == "printing"},
            "display_status": {"progress": progress}}


def entry(j: Job, clock: SimClock) -> dict:
    """One job as ``server.history.list`` and ``notify_history_changed`` show it, stamped by the
    wall clock (as a real printer's host would)."""
    status = "in_progress" if j.ended is None else HISTORY_STATUS.get(j.ended) or CAUSE_STATUS.get(j.cause, "error")
    end = j.ended_at
    return {"job_id": f"{j.id:06X}", "user": j.user or NO_USER, "filename": j.name, "status": status,
            "start_time": clock.wall(j.started), "end_time": clock.wall(end) if end else None,
            "print_duration": round(j.elapsed(end) if end else 0.0, 2),
            "total_duration": round(end - j.started, 2) if end else 0.0,
            "filament_used": round(j.completion(end) / 100 * j.filament_mm, 1) if end else 0.0,
            "metadata": metadata(j), "auxiliary_data": [], "exists": True}


def metadata(j: Job) -> dict:
    """The file's metadata as Moonraker reads it from a PrusaSlicer G-code (the slicer's figures)."""
    return {"size": j.size, "slicer": "PrusaSlicer", "estimated_time": round(j.total),
            "filament_total": j.filament_mm, "filament_weight_total": j.grams, "filament_type": j.material,
            "filament_colors": [COLOURS.get(j.material, "#808080")]}


def configuration(p: SimPrinter, face: dict) -> dict[str, dict]:
    """``configfile`` and ``toolhead`` as ``printer.objects.query`` gives them: what the printer can do."""
    if klippy(p, face)[0] != "ready":
        return {}
    caps = p.capabilities
    settings = {("extruder" if n == 0 else f"extruder{n}"): {"nozzle_diameter": caps.nozzle_mm}
                for n in range(caps.tools)}
    if caps.enclosed:
        settings["temperature_sensor chamber"] = {"sensor_type": "EPCOS 100K B57560G104F"}
    return {"configfile": {"settings": settings},
            "toolhead": {"axis_minimum": [0.0, 0.0, 0.0, 0.0], "axis_maximum": [*caps.volume, 0.0]}}


def history(p: SimPrinter, clock: SimClock, limit: int = 50) -> list[dict]:
    """Newest first, like Moonraker's default order."""
    jobs = list(p.history)
    if p.job is not None and p.job.ended is None:
        jobs.append(p.job)
    return [entry(j, clock) for j in reversed(jobs)][:limit]
