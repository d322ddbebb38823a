"""The material of a Bambu job from its 3MF: ``Metadata/slice_info.config``, as Bambu Studio
writes it when it slices — per plate ``<plate>`` its ``<metadata key="index" value="N"/>``
and one ``<filament id type color used_m used_g tray_info_idx/>`` per filament used::

    <config><header>…</header>
      <plate><metadata key="index" value="1"/>…
        <filament id="1" tray_info_idx="GFA01" type="PLA" color="#000000" used_m="5.45" used_g="17.32"/>
      </plate></config>

The plate being printed is the N of the report's ``gcode_file`` ("/data/Metadata/plate_N.gcode");
a sliced file sent from Bambu Studio holds that one plate only.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import IO
from xml.etree import ElementTree

from agent.printers.bambu.capabilities import colour
from common.protocol import MaterialUse

SLICE_INFO = "Metadata/slice_info.config"
MAX_SLICE_INFO = 1 << 20  # bytes: a real one is a few kB; a bigger one is not read
PLATE_RE = re.compile(r"plate_(\d+)\.gcode$", re.IGNORECASE)


class Unreadable(ValueError):
    """The file is not a 3MF with a slice_info we can read."""


def plate_of(gcode_file: str | None) -> int | None:
    match = PLATE_RE.search(gcode_file or "")
    return int(match.group(1)) if match else None


def material(archive: bytes | IO[bytes], plate: int | None) -> tuple[MaterialUse, ...]:
    """The filaments of ``plate`` (or of the only plate) in a 3MF (its bytes or a seekable file)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive) if isinstance(archive, bytes) else archive) as zf:
            entry = zf.getinfo(SLICE_INFO)
            if entry.file_size > MAX_SLICE_INFO:
                raise Unreadable(f"{SLICE_INFO} is {entry.file_size} bytes")
            root = ElementTree.fromstring(zf.read(entry))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, EOFError, NotImplementedError, zlib.error) as exc:
        raise Unreadable(f"no readable {SLICE_INFO} ({type(exc).__name__})") from None
    plates = root.findall("plate")
    chosen = _plate(plates, plate)
    if chosen is None:
        raise Unreadable(f"plate {plate} is not in the file ({len(plates)} plates)")
    return tuple(use for use in (_use(f) for f in chosen.findall("filament")) if use is not None)


def _plate(plates: list, wanted: int | None):
    if wanted is None:
        return plates[0] if len(plates) == 1 else None
    for plate in plates:
        index = next((m.get("value") for m in plate.findall("metadata") if m.get("key") == "index"), None)
        if index == str(wanted):
            return plate
    return plates[0] if len(plates) == 1 else None  # a sliced file: its one plate, whatever it is called


def _use(filament) -> MaterialUse | None:
    slot = _number(filament.get("id"))
    if slot is None or not 1 <= slot <= 100 or not slot.is_integer():
        return None
    grams, metres = _number(filament.get("used_g")), _number(filament.get("used_m"))
    kind = (filament.get("type") or "").strip()[:40] or None
    shade = colour((filament.get("color") or "").lstrip("#"))
    return MaterialUse(source="slicer", tool=int(slot) - 1, type=kind, colour=shade, grams=grams,
                       mm=round(metres * 1000, 1) if metres is not None else None)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 1e6 else None
