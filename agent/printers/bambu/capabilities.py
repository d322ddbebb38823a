"""What a Bambu printer has loaded and can do, from its merged report (``print``).

- AMS trays: ``ams.ams[].tray[]`` (``tray_type``, ``tray_color`` as RRGGBBAA, ``tray_info_idx``
  the filament preset); an empty tray is just ``{"id": "2"}``. The external spool is ``vt_tray``
  (``vir_slot[]`` on H2 printers), id 254/255. ``ams.tray_now``: the tray feeding the nozzle —
  255 none, 254 the external spool, below 128 AMS ``n // 4`` tray ``n % 4``, from 128 an AMS HT
  (one tray) with that id (pybambu ``models.py``, captures ``MOCK-X1CMULTIAMS.json``, ``MOCK-H2D.json``).
- The nozzle: ``nozzle_diameter`` and ``nozzle_type`` at the top; newer firmware lists every
  nozzle in ``device.nozzle.info[]`` (``diameter``, ``type`` such as "HS01").
- The model: the config's, else the serial's prefix (ha-bambulab's table: 00M X1/X1C, 03W X1E,
  01S P1P, 01P P1S, 039 A1, 030 A1 mini, 22E P2S, 093 H2S, 094 H2D).
"""

from __future__ import annotations

from agent.printers.values import as_dict, loose_int, loose_number, text
from common.protocol import MaterialUse, Tool

NO_TRAY, EXTERNAL = 255, 254
SERIAL_PREFIXES = {"00M": "X1C", "03W": "X1E", "01S": "P1P", "01P": "P1S", "039": "A1", "030": "A1 MINI",
                   "22E": "P2S", "093": "H2S", "094": "H2D"}
# Build volume (x, y, z mm) and enclosure, from Bambu Lab's spec sheets.
MODELS = {"X1": ((256.0, 256.0, 256.0), True), "X1C": ((256.0, 256.0, 256.0), True),
          "X1E": ((256.0, 256.0, 256.0), True), "P1P": ((256.0, 256.0, 256.0), False),
          "P1S": ((256.0, 256.0, 256.0), True), "A1": ((256.0, 256.0, 256.0), False),
          "A1 MINI": ((180.0, 180.0, 180.0), False), "P2S": ((256.0, 256.0, 256.0), True),
          "H2S": ((340.0, 320.0, 340.0), True), "H2D": ((350.0, 320.0, 325.0), True)}


def model_of(configured: str | None, serial: str) -> str | None:
    return configured or SERIAL_PREFIXES.get(serial[:3].upper())


def info(values: dict, model: str | None) -> dict:
    """Info's fields: model, volume, enclosure, the nozzles and the trays."""
    fields = {"model": model, "tools": nozzles(values), "slots": [tool for _, tool in trays(values)]}
    known = MODELS.get(model or "")
    if known:
        fields["volume"], fields["enclosed"] = list(known[0]), known[1]
    return fields


def nozzles(values: dict) -> list[Tool]:
    listed = as_dict(as_dict(values.get("device")).get("nozzle")).get("info")
    if isinstance(listed, list) and listed:
        return [_nozzle(n.get("diameter"), n.get("type")) for n in listed if isinstance(n, dict)][:16]
    return [_nozzle(values.get("nozzle_diameter"), values.get("nozzle_type"))]


def trays(values: dict) -> list[tuple[int, Tool]]:
    """(tray number as ``tray_now`` counts, what it holds) for every AMS tray, then the external spool."""
    out = []
    for unit in _list(as_dict(values.get("ams")).get("ams")):
        unit_id = loose_int(as_dict(unit).get("id"))
        for tray in _list(as_dict(unit).get("tray")):
            tray_id = loose_int(as_dict(tray).get("id"))
            if unit_id is not None and tray_id is not None:
                number_ = unit_id if unit_id >= 128 else unit_id * 4 + tray_id
                out.append((number_, _tray(tray)))
    for spool in [values.get("vt_tray"), *_list(values.get("vir_slot"))]:
        if isinstance(spool, dict) and text(spool.get("tray_type")):
            out.append((EXTERNAL, _tray(spool)))
    return out[:32]


def in_use(values: dict) -> MaterialUse | None:
    """The material of the tray feeding the nozzle now (type and colour, no amounts)."""
    ams = as_dict(values.get("ams"))
    now = loose_int(ams.get("tray_now"))
    if now is None and not _list(ams.get("ams")):
        now = EXTERNAL  # a printer without an AMS (P1P, A1 without AMS lite) feeds its external spool
    if now is None or now == NO_TRAY:
        return None
    tool = next((tool for number_, tool in trays(values) if number_ == now), None)
    if tool is None or tool.material is None:
        return None
    return MaterialUse(source="slicer", tool=0, type=tool.material, colour=tool.colour)


def colour(value) -> str | None:
    """Bambu's RRGGBBAA (or RRGGBB) as "#RRGGBB"; None for none or garbage."""
    raw = text(value)
    if len(raw) not in (6, 8):
        return None
    try:
        int(raw, 16)
    except ValueError:
        return None
    return "#" + raw[:6].upper()


def _tray(tray: dict) -> Tool:
    kind = text(tray.get("tray_type"))[:40] or None
    return Tool(material=kind, colour=colour(tray.get("tray_color")) if kind else None)


def _nozzle(diameter, kind) -> Tool:
    size = loose_number(diameter)
    name = text(kind)[:40] or None
    return Tool(nozzle_mm=size if size and 0 < size <= 5 else None, nozzle_type=name)


def _list(value) -> list:
    return value if isinstance(value, list) else []


