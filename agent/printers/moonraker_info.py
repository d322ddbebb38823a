"""What a Klipper printer can do, and its queue, from Klipper's objects and Moonraker's job queue.

- Build volume: ``toolhead.axis_maximum`` minus ``axis_minimum`` for X, Y, Z (Klipper's
  ``position_min``/``position_max``: the range the nozzle may reach, which can be a few mm more
  than the bed; a delta's is its diameter). The inventory corrects it where that matters.
- Tools: each ``[extruder]``, ``[extruder1]``, … of ``configfile.settings`` with its
  ``nozzle_diameter``.
- Enclosed: a ``heater_generic``, ``temperature_sensor`` or ``temperature_fan`` named ``chamber``
  (or ``*chamber*``) says the printer has one; none says nothing (many enclosures have no sensor).
- Model: Klipper does not know it (``printer.info`` gives a host name, ``[printer]`` the
  kinematics), so none: the inventory names the model.
- Queue: ``server.job_queue.status`` ``queued_jobs``, and the sum of their files'
  ``estimated_time`` (``server.files.metadata``) when every queued file has one.
"""

from __future__ import annotations

import re

from agent.printers.values import as_dict as _dict, number as _number
from common.protocol import Tool

EXTRUDER = re.compile(r"extruder(\d{0,2})")
CHAMBER_KINDS = ("heater_generic", "temperature_sensor", "temperature_fan")
MAX_TOOLS = 16
MAX_QUEUE = 100  # queued files whose estimate is asked for; a longer queue has no total


def capabilities(status: dict) -> dict:
    """protocol.Info's fields from a ``printer.objects.query`` of configfile.settings and toolhead."""
    settings = _dict(_dict(status.get("configfile")).get("settings"))
    return {"volume": _volume(_dict(status.get("toolhead"))), "tools": _tools(settings),
            "enclosed": True if any(_is_chamber(name) for name in settings) else None}


def _volume(toolhead: dict) -> list[float] | None:
    low, high = toolhead.get("axis_minimum"), toolhead.get("axis_maximum")
    if not isinstance(low, list) or not isinstance(high, list) or len(low) < 3 or len(high) < 3:
        return None
    sizes = []
    for a, b in zip(low[:3], high[:3]):
        a, b = _number(a), _number(b)
        if a is None or b is None or b <= a:
            return None
        sizes.append(round(b - a, 3))
    return sizes


def _tools(settings: dict) -> list[Tool]:
    found = []
    for name, section in settings.items():
        match = EXTRUDER.fullmatch(name) if isinstance(name, str) else None
        if match:
            index = int(match.group(1) or 0)
            found.append((index, Tool(nozzle_mm=_number(_dict(section).get("nozzle_diameter")))))
    return [tool for _, tool in sorted(found, key=lambda pair: pair[0])][:MAX_TOOLS]


def _is_chamber(section: str) -> bool:
    kind, _, name = section.partition(" ") if isinstance(section, str) else ("", "", "")
    return kind in CHAMBER_KINDS and "chamber" in name.lower()


def queue_files(answer) -> list[str] | None:
    """The queued files of a ``server.job_queue.status`` answer (or a queue-changed notice's
    ``updated_queue``); None when it is not a queue."""
    jobs = answer.get("queued_jobs") if isinstance(answer, dict) else answer
    if not isinstance(jobs, list):
        return None
    return [job.get("filename") for job in jobs if isinstance(job, dict) and isinstance(job.get("filename"), str)]


def queue_info(files: list[str], estimates: dict[str, float | None]) -> dict:
    """queued_jobs and queued_s: the sum of the files' estimates, None unless every file has one."""
    known = [estimates.get(name) for name in files]
    total = sum(known) if files and len(files) <= MAX_QUEUE and all(t is not None for t in known) else None
    return {"queued_jobs": len(files), "queued_s": round(total, 1) if total is not None else (0.0 if not files else None)}


def estimate(metadata) -> float | None:
    value = _number(_dict(metadata).get("estimated_time"))
    return value if value is not None and value >= 0 else None


def loaded_spool(answer) -> dict | None:
    """The material of Spoolman's active spool (``server.spoolman.proxy`` GET /v1/spool/{id},
    v2 response: {"response": spool, "error": ...}); None when there is none or Spoolman is away."""
    spool = _dict(answer).get("response")
    filament = _dict(_dict(spool).get("filament"))
    material = filament.get("material") if isinstance(filament.get("material"), str) else None
    hex_colour = filament.get("color_hex")
    colour = f"#{hex_colour}" if isinstance(hex_colour, str) and re.fullmatch(r"[0-9A-Fa-f]{6}", hex_colour) else None
    return {"material": material.strip() or None, "colour": colour} if material else None


def with_spool(caps: dict, spool: dict | None) -> dict:
    """Spoolman's active spool as the material loaded in the first extruder (Moonraker tracks one)."""
    if not spool:
        return caps
    tools = list(caps.get("tools") or [Tool()])
    tools[0] = Tool(nozzle_mm=tools[0].nozzle_mm, nozzle_type=tools[0].nozzle_type, **spool)
    return {**caps, "tools": tools}
