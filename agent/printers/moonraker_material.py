"""A Klipper job's material: Klipper's measurement and the slicer's figures from the file's metadata.

Klipper measures the filament a job pushed (``print_stats.filament_used``, mm; the history entry
keeps it as ``filament_used``). Moonraker reads the slicer's figures from the file
(``file_manager/metadata.py``; a history entry keeps them as its ``metadata``):
``filament_total`` (mm, all tools), ``filament_weight_total`` (g), ``filament_weights`` (g per
tool), ``filament_type`` (one name, or a JSON list of one per tool), ``filament_colors``.

What the agent sends, and why:

- One tool, and Klipper measured some filament: ``source="measured"``, ``mm`` as measured, the
  slicer's type and colour, and ``grams = measured mm x the slicer's grams per mm`` (the slicer
  knows the material's density and diameter; Klipper does not). A job that stopped halfway so
  weighs what it really used, not what the file planned.
- One tool, nothing measured yet (the job's start, or a Moonraker without the figure): the
  slicer's ``mm`` and ``grams`` as they are (``source="slicer"``).
- Several tools (a toolchanger, an MMU): the slicer's grams, type and colour per tool
  (``source="slicer"``). Klipper measures the extruder's total only, which cannot honestly be
  split among the tools; the collector counts a failed job's slicer figures pro rata to progress.
"""

from __future__ import annotations

import json
import re

from agent.printers.values import as_dict as _dict, number as _number, text as _text
from common.protocol import MaterialUse

COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
MAX_TOOLS = 16


def material_of(metadata, measured_mm) -> tuple[MaterialUse, ...] | None:
    """The job's material from its file's metadata and Klipper's measured mm; None when neither tells."""
    meta = _dict(metadata)
    weights = [_number(w) for w in meta.get("filament_weights")][:MAX_TOOLS] \
        if isinstance(meta.get("filament_weights"), list) else []
    types, colours = _types(meta.get("filament_type")), _colours(meta.get("filament_colors"))
    used = [tool for tool, grams in enumerate(weights) if grams]  # PrusaSlicer lists unused filaments as 0.00
    if len(used) > 1:
        return tuple(MaterialUse(source="slicer", tool=tool, type=_at(types, tool), colour=_at(colours, tool),
                                 grams=weights[tool]) for tool in used)
    tool = used[0] if used else 0
    kind = _at(types, tool) if used or len(set(types)) == 1 else None  # several, and which one is unknown
    colour = _at(colours, tool) if used or len(colours) == 1 else None
    measured = _number(measured_mm)
    slicer_mm, slicer_g = _positive(meta.get("filament_total")), _positive(meta.get("filament_weight_total"))
    if measured is not None and measured > 0:
        grams = round(measured * slicer_g / slicer_mm, 2) if slicer_g and slicer_mm else None
        return (MaterialUse(source="measured", tool=tool, type=kind, colour=colour, grams=grams,
                            mm=round(measured, 2)),)
    if slicer_mm is None and slicer_g is None:
        return None
    return (MaterialUse(source="slicer", tool=tool, type=kind, colour=colour, grams=slicer_g, mm=slicer_mm),)


def _at(values: list, index: int):
    return values[index] if index < len(values) else None


def _types(value) -> list[str | None]:
    """Moonraker's filament_type: "PLA", or a JSON list '["PLA", "PETG"]' for several filaments."""
    text = _text(value)
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError:
            return []
        return [(_text(n) or None) for n in names] if isinstance(names, list) else []
    return [text] if text else []


def _colours(value) -> list[str | None]:
    if not isinstance(value, list):
        return []
    return [c if isinstance(c, str) and COLOUR.fullmatch(c) else None for c in value]


def _positive(value) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None
