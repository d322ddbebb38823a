"""Why jobs failed, grouped: each printer API words its errors its own way (docs/materials.md
"Outcomes"). A cause is a label key (cost_labels.CAUSES); Bambu Lab's codes are grouped by the
module their top byte names (its wiki's layout: ``HMS_0300_…``, ``[0300_400C]``).

The patterns are ours, from the texts the adapters pass on: Klipper's shutdown and heater messages
(klippy/extras/heaters.py, verify_heater.py: "Heater extruder not heating at expected rate",
"MCU 'mcu' shutdown: …", "Lost communication with MCU"), Marlin's via OctoPrint and PrusaLink
("Thermal Runaway", "MINTEMP", "MAXTEMP", "filament runout"), and Moonraker's history statuses.
"""

from __future__ import annotations

import re

CANCELLED = "cancelled"
OTHER = "other"
UNKNOWN = "unknown"  # failed, with no text at all

BAMBU_MODULES = {0x03: "bambu_motion", 0x05: "bambu_mainboard", 0x07: "bambu_ams", 0x08: "bambu_toolhead",
                 0x0C: "bambu_camera", 0x12: "bambu_ams_lite"}
_BAMBU = re.compile(r"\bHMS_([0-9A-F]{2})[0-9A-F]{2}_|\[([0-9A-F]{2})[0-9A-F]{2}_[0-9A-F]{4}\]", re.I)

# First match wins: the specific before the general (a thermal runaway is also a heater error).
PATTERNS = [(cause, re.compile(pattern, re.I)) for cause, pattern in (
    ("thermal_runaway", r"thermal\s*runaway"),
    ("heater_not_heating", r"not heating at expected rate|heating failed"),
    ("mintemp", r"min\s*temp"),
    ("maxtemp", r"max\s*temp|over\s*temperature"),
    ("mcu_shutdown", r"\bmcu\b.*shutdown|lost communication with mcu|timer too close|shutdown"),
    ("filament_runout", r"filament.*(run\s*out|runout|sensor)|runout|out of filament"),
    (CANCELLED, r"cancel+ed|aborted by user|stopped by user"),
    ("connection_lost", r"connection|disconnect|serial|timed? ?out|unreachable|communication"),
    ("host_restart", r"moonraker (restarted|stopped)|interrupted"),
    ("file_problem", r"file|parse"),
)]


def cause(kind: str, error: str | None) -> str:
    """The cause of an ended job: '' for a completed one."""
    if kind == "done":
        return ""
    text = (error or "").strip()
    if not text:
        return CANCELLED if kind == "cancelled" else UNKNOWN
    bambu = _BAMBU.search(text)
    if bambu:
        module = int(bambu.group(1) or bambu.group(2), 16)
        if kind == "cancelled" or re.search(r"cancel", text, re.I):
            return CANCELLED
        return BAMBU_MODULES.get(module, "bambu_other")
    found = next((c for c, pattern in PATTERNS if pattern.search(text)), None)
    if found is None:
        return CANCELLED if kind == "cancelled" else OTHER
    return found


CAUSES = ("thermal_runaway", "heater_not_heating", "mintemp", "maxtemp", "mcu_shutdown", "filament_runout",
          CANCELLED, "connection_lost", "host_restart", "file_problem",
          *BAMBU_MODULES.values(), "bambu_other", OTHER, UNKNOWN)
