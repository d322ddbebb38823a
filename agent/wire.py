"""The agent's last check of what a printer said before it goes on the wire.

A printer may report a nozzle of 0 mm, a material name of 200 characters or a colour that is no
colour. The collector refuses a whole message with one such value, which would lose a job's end
with its material: here each value the contract does not accept is left out instead (the rest
goes), too long a text is shortened, and the reason is logged once per printer and value.
"""

from __future__ import annotations

import logging

import msgspec

from common import protocol

log = logging.getLogger(__name__)

TEXT_MAX = 40  # protocol.MaterialName
_HEADER = ("v", "ts", "printer", "site", "seq")
INFO_FIELDS = tuple(f for f in protocol.Info.__struct_fields__ if f not in _HEADER)


class WireCheck:
    """Checks one printer's material and info; remembers what it logged so each problem shows once."""

    def __init__(self, printer: str):
        self.printer = printer
        self._told: set[str] = set()

    def material(self, items) -> list[protocol.MaterialUse]:
        """Each tool's MaterialUse as the contract accepts it; an entry without a sound source is left out."""
        out = []
        for item in items or ():
            fixed = self._repair(_builtins(item), protocol.MaterialUse, required=("source",))
            if fixed is not None:
                out.append(fixed)
        return out

    def info(self, fields: dict) -> dict:
        """Info's fields (without the header) as the contract accepts them."""
        header = {"v": protocol.SCHEMA_VERSION, "ts": protocol.MIN_TS_MS, "printer": "p", "site": "s", "seq": 0}
        raw = {k: v for k, v in _builtins(fields).items() if k in INFO_FIELDS}
        for key in ("tools", "slots"):
            if isinstance(raw.get(key), list):
                raw[key] = [_builtins(t) for t in (self._repair(_builtins(x), protocol.Tool) for x in raw[key]) if t is not None]
        checked = self._repair({**header, **raw}, protocol.Info, required=_HEADER)
        return {k: getattr(checked, k) for k in INFO_FIELDS} if checked is not None else {}

    def _repair(self, raw, kind, required=()):
        if not isinstance(raw, dict):
            self._tell(f"{kind.__name__}", f"not a table: {type(raw).__name__}")
            return None
        raw = {k: _shorten(v) for k, v in raw.items() if v is not None}
        try:
            return msgspec.convert(raw, kind)
        except msgspec.ValidationError:
            pass
        base = {k: raw[k] for k in required if k in raw}
        kept = dict(base)
        for key, value in raw.items():
            if key in required:
                continue
            try:
                msgspec.convert({**base, key: value}, kind)
                kept[key] = value
            except msgspec.ValidationError as exc:
                self._tell(f"{kind.__name__}.{key}", str(exc))
        try:
            return msgspec.convert(kept, kind)
        except msgspec.ValidationError as exc:
            self._tell(kind.__name__, str(exc))
            return None

    def _tell(self, what: str, why: str) -> None:
        if what not in self._told:
            self._told.add(what)
            log.warning("%s: left out %s the printer reported (%s)", self.printer, what, why)


def _builtins(value):
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return None


def _shorten(value):
    return value[:TEXT_MAX].strip() if isinstance(value, str) and len(value) > TEXT_MAX else value
