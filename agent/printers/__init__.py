"""Printer APIs, one module each: a settings struct (its config table) and a client behind
the small ``Printer`` protocol in base.py. The rest of the agent never sees HTTP or MQTT.

``type`` in a ``[[printers]]`` table picks the module through the explicit table below.
"""

from __future__ import annotations

from typing import Union

from agent.printers.bambu import BambuSettings
from agent.printers.base import PastJob, Printer, PrinterSettings, PushPrinter, Snapshot
from agent.printers.moonraker import MoonrakerSettings
from agent.printers.octoprint import OctoPrintSettings
from agent.printers.prusalink import PrusaLinkSettings

# config ``type`` -> settings struct (whose ``build()`` makes the client)
PRINTER_TYPES: dict[str, type[PrinterSettings]] = {
    "octoprint": OctoPrintSettings,
    "prusalink": PrusaLinkSettings,
    "moonraker": MoonrakerSettings,
    "bambu": BambuSettings,
}
DEFAULT_TYPE = "octoprint"  # configs written before there was a choice

PrinterConfig = Union[tuple(PRINTER_TYPES.values())]  # noqa: UP007 (built from the table)


def make_printer(cfg: PrinterSettings) -> Printer:
    """Build the printer client for one ``[[printers]]`` table."""
    return cfg.build()


__all__ = ["PRINTER_TYPES", "PastJob", "Printer", "PrinterConfig", "PrinterSettings", "PushPrinter", "Snapshot",
           "make_printer"]
