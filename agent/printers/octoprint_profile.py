"""What an OctoPrint printer can do and what its job uses: its printer profile and the file's analysis.

Capabilities come from the printer profile (``GET /api/printerprofiles``: the ``current`` one,
else the ``default``; fields as OctoPrint's ``printer/profile.py`` documents them): the build
volume (``volume.width/depth/height``; a circular bed's width is its diameter), one tool per
``extruder.count`` with ``extruder.nozzleDiameter``, ``heatedChamber`` (true: enclosed; false
says nothing, as many enclosed printers heat no chamber) and the model (``model``, else the
profile's ``name``; OctoPrint's own placeholders count as unknown). A profile can change at any
time without a REST event, so it is read again every ``PROFILE_EVERY`` seconds, when OctoPrint
connects to the printer (the connection names the profile to use) and after OctoPrint was
unreachable (it may have restarted with another profile).

A job's material is the slicer's, as OctoPrint's G-code analysis measured the file:
``job.filament.toolN.length`` (mm of filament). OctoPrint knows no material type, so no grams
either: the collector converts mm with the inventory's density. (``volume`` in cm3 is
OctoPrint's own conversion with its configured filament diameter: the length is the source.)
"""

from __future__ import annotations

import logging
import re
from typing import Callable

from agent.printers.values import as_dict as _dict, number as _number, text as _text
from common.protocol import MaterialUse, Tool

log = logging.getLogger(__name__)

PROFILE_EVERY = 300.0  # seconds between reads of the printer profile
PLACEHOLDERS = frozenset({"", "Generic RepRap Printer", "Default", "_default"})  # OctoPrint's default profile
MAX_TOOLS = 16  # protocol.Info.tools
TOOL_KEY = re.compile(r"tool(\d{1,2})")


class ProfileReader:
    """Keeps the capabilities from the last printer profile read; reads it again when due."""

    def __init__(self, clock: Callable[[], float], every: float = PROFILE_EVERY):
        self._clock, self._every = clock, every
        self._read_at: float | None = None
        self.info: dict | None = None
        self._refused = False  # logged once: a key without the profile permission
        self._connected: bool | None = None

    def forget(self) -> None:
        """OctoPrint did not answer: read the profile again once it does."""
        self._read_at = None

    def current(self, client, connected: bool = True) -> dict | None:
        """The capabilities; ``connected``: OctoPrint is connected to the printer now."""
        now, connecting = self._clock(), connected and self._connected is False
        self._connected = connected
        if self._read_at is None or connecting or now - self._read_at >= self._every:
            self._read_at = now
            info = self._read(client)
            if info is not None:
                self.info = info
        return self.info

    def _read(self, client) -> dict | None:
        try:
            answer = client.printer_profiles()
        except Exception as exc:  # no profile is no capability, not a lost printer
            if not self._refused:
                log.info("OctoPrint's printer profile is not readable (%s): capabilities come from the "
                         "inventory", type(exc).__name__)
            self._refused = True
            return None
        self._refused = False
        return info_from_profiles(answer)


def info_from_profiles(answer) -> dict | None:
    """protocol.Info's fields from ``/api/printerprofiles``; None when it names no profile."""
    profile = _pick(_dict(_dict(answer).get("profiles")))
    if profile is None:
        return None
    volume, extruder = _dict(profile.get("volume")), _dict(profile.get("extruder"))
    count = _number(extruder.get("count"))
    nozzle = _number(extruder.get("nozzleDiameter"))
    tools = [Tool(nozzle_mm=nozzle) for _ in range(min(int(count), MAX_TOOLS))] if count and count >= 1 else []
    return {"model": _model(profile), "volume": _volume(volume), "tools": tools,
            "enclosed": True if profile.get("heatedChamber") is True else None}


def _pick(profiles: dict) -> dict | None:
    candidates = [p for p in profiles.values() if isinstance(p, dict)]
    for flag in ("current", "default"):
        for profile in candidates:
            if profile.get(flag) is True:
                return profile
    return candidates[0] if len(candidates) == 1 else None


def _model(profile: dict) -> str | None:
    for key in ("model", "name"):
        value = _text(profile.get(key))
        if value not in PLACEHOLDERS:
            return value
    return None


def _volume(volume: dict) -> list[float] | None:
    width, depth, height = (_number(volume.get(k)) for k in ("width", "depth", "height"))
    if volume.get("formFactor") == "circular" and width:
        depth = width  # OctoPrint's width is the bed's diameter then
    sizes = [width, depth, height]
    return sizes if all(s and s > 0 for s in sizes) else None


def material_of(job: dict) -> tuple[MaterialUse, ...] | None:
    """The slicer's filament per tool from ``/api/job``'s ``job.filament``; None until analysed."""
    uses = []
    for key, tool in _dict(job.get("filament")).items():
        match = TOOL_KEY.fullmatch(key) if isinstance(key, str) else None
        length = _number(_dict(tool).get("length"))
        if match and length is not None and length > 0:
            uses.append(MaterialUse(source="slicer", tool=int(match.group(1)), mm=round(length, 2)))
    return tuple(sorted(uses, key=lambda use: use.tool)) or None
