"""Readable text for the error codes a Bambu Lab printer reports.

Two kinds of code reach a monitor (both under ``print`` in a report):

- ``print_error`` (and ``mc_print_error_code``): one 32-bit number, written by Bambu as eight
  hex digits, e.g. 50348044 = ``0300_400C``, "the task was cancelled". The top byte names the
  module (03 motion controller, 05 main board, 07 AMS, 0C camera/LiDAR).
- ``hms``: a list of ``{"attr": int, "code": int}``, written ``HMS_AAAA_AAAA_CCCC_CCCC``.
  ``attr`` holds module (top byte), module number and part; the top half of ``code`` is the
  alert level (1 fatal, 2 warning, 3 information).

The table below is our own short selection, worded by us, of the codes a lab is likely to
meet when a print fails. Sources (read, nothing copied): Bambu Lab's wiki HMS pages
(https://wiki.bambulab.com/en/x1/troubleshooting/hmscode, which also documents the
module/level layout), the code lists in greghesp/ha-bambulab
(custom_components/bambu_lab/pybambu/const_print_errors.py, const_hms_errors.py), and
ha-bambulab issue #176 (a cancel shows as 0300 400C). A code not in the table still gets a
line with its number, module and level, so nothing is ever reported as a bare "failed".
"""

from __future__ import annotations

# print_error values that mean "cancelled by someone", not a failure.
CANCEL_CODES = frozenset({
    0x0300400C,  # 50348044 "the task was cancelled" (stop from the screen, Studio or Handy)
    0x0500400E,  # "printing was cancelled" (a job cancelled while it was being started)
})

PRINT_ERRORS: dict[int, str] = {
    0x03004000: "Z axis homing failed; the print was stopped",
    0x03004001: "timed out waiting for the nozzle to cool down before homing",
    0x03004002: "automatic bed levelling failed; the print was stopped",
    0x03004005: "the hotend cooling fan speed is abnormal",
    0x03004006: "the nozzle is clogged",
    0x03004008: "the AMS failed to change filament",
    0x03004009: "homing the X/Y axes failed",
    0x0300400A: "measuring the mechanical resonance frequency failed",
    0x0300400B: "internal communication error",
    0x0300400C: "the print was cancelled",
    0x0300400D: "resuming after a power loss failed",
    0x0300400E: "the motor self-check failed",
    0x0300400F: "the supply voltage does not match the printer",
    0x03008001: "paused by a pause command in the print file",
    0x03008003: "AI print monitoring detected spaghetti",
    0x03008008: "nozzle temperature malfunction",
    0x03008009: "heatbed temperature malfunction",
    0x0300800A: "AI print monitoring detected a filament pile-up at the waste chute",
    0x0300800D: "the extruder is not extruding normally",
    0x0300800E: "the print file is not available (was the storage removed?)",
    0x0300800F: "the door seems to be open",
    0x03008013: "paused by the user",
    0x05004002: "unsupported print file path or name",
    0x05004003: "the printer could not parse the print file",
    0x05004004: "the printer is busy and cannot start a new job",
    0x05004006: "not enough free storage for the print job",
    0x0500400E: "the print was cancelled",
}

# (attr, code) -> text; attr and code as the printer sends them.
HMS: dict[tuple[int, int], str] = {
    (0x03000100, 0x00010001): "heatbed temperature abnormal: the heater may be short-circuited",
    (0x03000100, 0x00010002): "heatbed temperature abnormal: the heater or its thermal switch may be open",
    (0x03000100, 0x00010003): "heatbed over temperature",
    (0x03000100, 0x00010006): "heatbed temperature abnormal: the sensor may be short-circuited",
    (0x03000100, 0x00010007): "heatbed temperature abnormal: the sensor may be open-circuited",
    (0x03000200, 0x00010001): "nozzle temperature abnormal: the heater may be short-circuited",
    (0x03000200, 0x00010002): "nozzle temperature abnormal: the heater may be open-circuited",
    (0x03000200, 0x00010003): "nozzle over temperature",
    (0x03000200, 0x00010006): "nozzle temperature abnormal: the sensor may be short-circuited",
    (0x03000200, 0x00010007): "nozzle temperature abnormal: the sensor may be open-circuited",
    (0x03000300, 0x00010001): "the hotend cooling fan is too slow or stopped",
    (0x03000400, 0x00020001): "the part cooling fan is too slow or stopped",
    (0x03000500, 0x00010001): "the motor driver is overheating",
    (0x03000900, 0x00020001): "the extruder motor is overloaded: clogged extruder or stuck filament",
    (0x03000900, 0x00020002): "abnormal extrusion resistance: the extruder may be clogged",
    (0x03000900, 0x00020003): "the extruder is extruding abnormally: a clog, or slipping filament",
    (0x03002000, 0x00010001): "X axis homing abnormal: the toolhead may be stuck",
    (0x03002000, 0x00010002): "Y axis homing abnormal: the toolhead or Y carriage may be stuck",
}

MODULES = {0x03: "motion controller", 0x05: "main board", 0x07: "AMS", 0x08: "toolhead",
           0x0C: "camera/LiDAR", 0x12: "AMS lite"}
LEVELS = {1: "fatal error", 2: "warning", 3: "notice"}
UNKNOWN = "not in printfarm's table; look the code up on wiki.bambulab.com"


def print_error_code(value: int) -> str:
    """50348044 -> '0300_400C', the way Bambu writes it."""
    return f"{value >> 16 & 0xFFFF:04X}_{value & 0xFFFF:04X}"


def hms_code(attr: int, code: int) -> str:
    """(0x03000100, 0x00010001) -> 'HMS_0300_0100_0001_0001'."""
    parts = (attr >> 16, attr & 0xFFFF, code >> 16, code & 0xFFFF)
    return "HMS_" + "_".join(f"{p & 0xFFFF:04X}" for p in parts)


def describe_print_error(value: int) -> str:
    text = PRINT_ERRORS.get(value)
    if text is None:
        module = MODULES.get(value >> 24 & 0xFF, "unknown module")
        text = f"{module} error, {UNKNOWN}"
    return f"{text} [{print_error_code(value)}]"


def describe_hms(attr: int, code: int) -> str:
    text = HMS.get((attr, code))
    if text is None:
        module = MODULES.get(attr >> 24 & 0xFF, "unknown module")
        text = f"{module} {LEVELS.get(code >> 16, 'alert')}, {UNKNOWN}"
    return f"{hms_code(attr, code)}: {text}"
