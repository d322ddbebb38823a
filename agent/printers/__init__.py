"""Printer APIs, one module each, behind the small ``Printer`` protocol in base.py.

The rest of the agent never sees HTTP: it calls ``poll()`` and gets a ``Snapshot``.
"""

from agent.printers.base import Printer, Snapshot


def make_printer(cfg) -> Printer:
    """Build the printer client named by the config's ``type``."""
    if cfg.type == "octoprint":
        from agent.printers.octoprint import OctoPrint

        return OctoPrint(cfg.url, cfg.api_key, timeout=cfg.timeout)
    raise ValueError(f"unknown printer type {cfg.type!r}")


__all__ = ["Printer", "Snapshot", "make_printer"]
