"""What a PrusaLink job uses and what the printer can do, from PrusaLink's own answers.

Material: the print file's ``meta`` (PrusaLink v1 ``/api/v1/job`` -> ``file.meta``, or
``/api/v1/files/{storage}/{path}`` -> ``meta``), the slicer's figures as Prusa's metadata
parser (py-gcode-metadata ``FDMMetaData``, used by Prusa-Link) reads them from the G-code
comments: ``filament used [g]``, ``filament used [mm]``, ``filament_type`` for the whole job
(the sum over tools; the type only when every tool has the same) and the same keys with
`` per tool`` as lists for an MMU or XL print. Prusa Connect's flavour of the same meta sends
the numbers as text ("0.34, 0.00"): both are read. Buddy firmware's own HTTP server serves no
meta at all (lib/WUI/nhttp/file_info.cpp renders name, size and refs only): the job then has
the type loaded in the printer (legacy ``/api/printer`` ``telemetry.material``) and no amounts.

Capabilities: ``/api/v1/info`` (``nozzle_diameter``, ``mmu``) and the model where the printer
names it (the Pi add-on's ``/api/version`` ``original``: "PrusaLink I3MK3S") or the config says.
No serial, host name or file name goes into Info: they identify, they do not describe.
"""

from __future__ import annotations

import re

from agent.printers.values import as_dict, number, text
from common.protocol import MaterialUse, Tool

PER_TOOL = " per tool"
GRAMS, MM, TYPE = "filament used [g]", "filament used [mm]", "filament_type"
NO_MATERIAL = frozenset({"", "---", "NONE"})  # Buddy's name for "nothing loaded"
MMU_SLOTS = 5  # MMU2S and MMU3: five filaments
# Build volumes (x, y, z mm) and enclosure of Prusa's PrusaLink printers, from Prusa's spec sheets.
MODELS: dict[str, tuple[tuple[float, float, float], bool]] = {
    "MK3S": ((250.0, 210.0, 210.0), False), "MK3.5": ((250.0, 210.0, 220.0), False),
    "MK3.9": ((250.0, 210.0, 220.0), False), "MK4": ((250.0, 210.0, 220.0), False),
    "MK4S": ((250.0, 210.0, 220.0), False), "MINI": ((180.0, 180.0, 180.0), False),
    "XL": ((360.0, 360.0, 360.0), False), "CORE ONE": ((250.0, 220.0, 270.0), True),
}


def job_material(meta: dict | None, loaded: str | None = None) -> tuple[MaterialUse, ...]:
    """The job's material per tool from a file's ``meta``; ``loaded``: the material the printer
    says is loaded, the type when the meta names none. Empty when nothing is known."""
    meta = as_dict(meta)
    grams, mm, types = (_values(meta, key) for key in (GRAMS, MM, TYPE))
    tools = max(len(grams), len(mm), len(types))
    if tools > 1:
        uses = [_use(i, _at(grams, i), _at(mm, i), _at(types, i)) for i in range(tools)]
        uses = [u for u in uses if u.grams or u.mm]  # the MMU's unused slots: 0.00
        if uses:
            return tuple(uses)
    use = _use(0, _total(meta, GRAMS), _total(meta, MM), _single(meta.get(TYPE)) or material_name(loaded))
    return (use,) if (use.grams is not None or use.mm is not None or use.type) else ()


def material_name(value) -> str | None:
    name = text(value)[:40]
    return None if name.upper() in NO_MATERIAL else name


def _use(tool: int, grams, mm, kind) -> MaterialUse:
    return MaterialUse(source="slicer", tool=tool, type=material_name(kind), grams=_amount(grams), mm=_amount(mm))


def _values(meta: dict, key: str) -> list:
    """The per-tool list of ``key`` (``<key> per tool``), else the single value split by tool."""
    listed = meta.get(key + PER_TOOL)
    if isinstance(listed, list):
        return listed
    value = meta.get(key)
    if isinstance(value, str):
        return [part for part in re.split(";" if key == TYPE else ",", value)]
    return [value] if value is not None else []


def _total(meta: dict, key: str):
    value = meta.get(key)
    if isinstance(value, str):  # Prusa Connect's text: "0.34, 0.00" for an MMU file
        parts = [_amount(p) for p in value.split(",")]
        return sum(parts) if parts and None not in parts else None
    return value


def _single(value) -> str | None:
    if not isinstance(value, str):
        return None
    kinds = {k.strip() for k in value.split(";") if k.strip()}
    return kinds.pop() if len(kinds) == 1 else None


def _at(values: list, index: int):
    return values[index] if index < len(values) else None


def _amount(value) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    value = number(value)
    return round(value, 3) if value is not None and 0 <= value <= 1e9 else None


# -- capabilities ------------------------------------------------------------------------------

def model_name(version: dict | None, configured: str | None) -> str | None:
    """The model: the config's, else the Pi add-on's ``original`` ("PrusaLink I3MK3S" -> "MK3S")."""
    if configured:
        return configured
    original = text(as_dict(version).get("original")).upper().removeprefix("PRUSALINK").strip()
    original = original.removeprefix("I3").strip()
    if not original or "UNKNOWN" in original:  # "Unknown printer type"
        return None
    return original[:40]


def capabilities(info: dict | None, model: str | None, loaded: str | None) -> dict:
    """Info's fields from ``/api/v1/info``, the model and the material loaded."""
    info = as_dict(info)
    nozzle = number(info.get("nozzle_diameter"))
    tool = Tool(nozzle_mm=nozzle if nozzle and 0 < nozzle <= 5 else None, material=material_name(loaded))
    fields = {"model": model, "tools": [tool]}
    if info.get("mmu") is True:  # what each slot holds is not in the API: the slots only
        fields["slots"] = [Tool() for _ in range(MMU_SLOTS)]
    known = MODELS.get((model or "").upper())
    if known:
        fields["volume"], fields["enclosed"] = list(known[0]), known[1]
    return fields
