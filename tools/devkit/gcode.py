"""What a G-code file extrudes, counted from the file alone: the tests' truth for the filament a
printer host reports (OctoPrint's analysis, Klipper's filament_used)."""

from __future__ import annotations


def extruded_mm(gcode: str, until: str | None = None) -> float:
    """The filament the G-code pushes (absolute E, M82), up to the line ``until`` if given."""
    total = position = 0.0
    for line in gcode.splitlines():
        if until is not None and line.strip() == until:
            break
        words = line.split(";")[0].split()
        if words and words[0] == "G92":
            position = next((float(w[1:]) for w in words if w.startswith("E")), position)
        elif words and words[0] in ("G0", "G1"):
            for word in words[1:]:
                if word.startswith("E"):
                    e = float(word[1:])
                    total += max(e - position, 0.0)
                    position = e
    return total
