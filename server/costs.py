"""Materials, prices and machine-hour rates from the inventory (docs/materials.md).

```toml
[materials.PLA]
price_per_kg = 250            # in the currency below
density = 1.24                # g/cm3; optional for the types with a default (DENSITIES)
diameter = 1.75               # mm, the default

[rates]
currency = "SEK"
hour_rate = 90                # per machine hour, every printer unless said below
start_fee = 0                 # per job

[rates.models."Bambu Lab X1C"]
hour_rate = 120

[rates.printers.oru-mk4-01]   # a printer's own rate wins over its model's
hour_rate = 80
start_fee = 25
```

A printer reports its material as free text ("PLA", "PETG-CF", "Bambu PLA Basic"): ``Prices.kind``
finds the inventory's (or a default density's) type in it, the whole name first, then a word of it.
"""

from __future__ import annotations

import logging
import math
import re
import time

import msgspec

from common.configkit import Invalid, Section
from common.text import name_problem
from server import spoolman

log = logging.getLogger(__name__)

# g/cm3, as filament makers state them (the contract for issue 23).
DENSITIES = {"PLA": 1.24, "PETG": 1.27, "ABS": 1.04, "ASA": 1.07, "TPU": 1.21, "PC": 1.20, "PA": 1.14}
DIAMETER_MM = 1.75
SPOOLMAN_FRESH_S = 600  # Spoolman's prices are read again after this long
_WORDS = re.compile(r"[^A-Z0-9]+")


def _check_amount(key: str, value: float | None, high: float, fix: str) -> None:
    if value is not None and not (0 <= value <= high and math.isfinite(value)):
        raise Invalid(key, f"{value!r} is out of range (0 to {high:g})", fix)


class Material(Section):
    price_per_kg: float | None = None
    density: float | None = None  # g/cm3
    diameter: float = DIAMETER_MM  # mm

    def __post_init__(self):
        _check_amount("price_per_kg", self.price_per_kg, 1e6, "write the price of one kilogram, e.g. 250")
        if self.density is not None and not 0.3 <= self.density <= 3.0:
            raise Invalid("density", f"{self.density!r} g/cm3 is no filament's", "write it in g/cm3, e.g. 1.24")
        if not 1.0 <= self.diameter <= 3.5:
            raise Invalid("diameter", f"{self.diameter!r} mm is no filament's", "write 1.75 or 2.85")


class Rate(Section):
    hour_rate: float | None = None
    start_fee: float | None = None
    # The type a job's material is counted as where the printer names none (OctoPrint's analysis
    # gives lengths only): its density makes the grams, its price the cost.
    assumed_material: str | None = None

    def __post_init__(self):
        _check_amount("hour_rate", self.hour_rate, 1e6, "write the price of one machine hour, e.g. 90")
        _check_amount("start_fee", self.start_fee, 1e6, "write the fee per job, e.g. 25")


class Rates(Rate):
    currency: str = "SEK"
    models: dict[str, Rate] = {}
    printers: dict[str, Rate] = {}

    def __post_init__(self):
        super().__post_init__()
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise Invalid("currency", f"{self.currency!r} is not a currency code", "write its ISO 4217 code, e.g. SEK")


def check(inv) -> None:
    """What the tables name must exist: called from Inventory.__post_init__."""
    for name in inv.materials:
        problem = name_problem(name) or ("is too long" if len(name) > 40 else None) or \
            ("has no letter or digit" if not _WORDS.sub("", name.upper()) else None)
        if problem:
            raise Invalid(f"materials.{name}", problem, "name the type as printers report it, e.g. PLA or PETG-CF")
    for printer in inv.rates.printers:
        if printer not in inv.printers:
            raise Invalid(f"rates.printers.{printer}", "is not a printer of the inventory",
                          f"add a [printers.{printer}] table or correct the ID")
    known = {_norm(k) for k in (*DENSITIES, *inv.materials)}
    for key, rate in [("rates", inv.rates), *((f"rates.models.{k}", r) for k, r in inv.rates.models.items()),
                      *((f"rates.printers.{k}", r) for k, r in inv.rates.printers.items())]:
        if rate.assumed_material is not None and _norm(rate.assumed_material) not in known:
            raise Invalid(f"{key}.assumed_material", f"{rate.assumed_material!r} has no density",
                          f"use one of {', '.join(DENSITIES)} or add a [materials.{rate.assumed_material}] density")
    models = {p.model for p in inv.printers.values()}
    for model in inv.rates.models:
        if model not in models:
            raise Invalid(f"rates.models.{model}", "no printer has this model",
                          "write the model as a [printers.*] model says it")


def of_printers(rates: Rates, printers: dict) -> Rates:
    """``rates`` for only these printers (an organisation's part of the inventory)."""
    models = {p.model for p in printers.values()}
    return msgspec.structs.replace(rates, printers={k: v for k, v in rates.printers.items() if k in printers},
                                   models={k: v for k, v in rates.models.items() if k in models})


def from_spoolman(inv) -> tuple[dict, str | None]:
    """Spoolman's figures per material for ``inv``'s [spoolman] (read once per run), and why
    they are missing if Spoolman could not be read."""
    settings = inv.spoolman
    if settings is None:
        return {}, None
    # One report reads it once (its period and the pages of its files agree); a collector that
    # makes scheduled reports for months reads it again for each (a run is shorter than this).
    read_at, found = getattr(settings, "read_once", (None, None))
    if read_at is None or time.monotonic() - read_at > SPOOLMAN_FRESH_S:
        try:
            found = (spoolman.figures(spoolman.read(settings), _norm), None)
        except spoolman.Unreadable as exc:
            log.warning("Spoolman not read, the inventory's prices alone are used: %s", exc)
            found = ({}, str(exc))
        settings.read_once = (time.monotonic(), found)
    return found


class Prices:
    """The inventory's prices, rates and densities (filled in from Spoolman's where it leaves
    them out), looked up by what a printer reports."""

    def __init__(self, inv):
        self.inv, self.rates = inv, inv.rates
        self.spools, self.spoolman_problem = from_spoolman(inv)
        self.materials = {_norm(name): (name, m) for name, m in inv.materials.items()}
        for key, found in self.spools.items():
            try:
                self._fill(key, found)
            except Invalid:  # Spoolman holds a figure no filament has: left out, said once
                log.warning("Spoolman's figures for %r are out of range and not used: %s", key, found)
        self._kinds: dict[str, str | None] = {}
        self._by_kind: dict[str, Material | None] = {}

    def _fill(self, key: str, found) -> None:
        """The inventory's figures for ``key``, with what it leaves out from Spoolman's."""
        if key not in self.materials:
            self.materials[key] = (key, Material(price_per_kg=found.price_per_kg, density=found.density,
                                                 diameter=found.diameter or DIAMETER_MM))
            return
        name, m = self.materials[key]
        self.materials[key] = (name, Material(
            price_per_kg=m.price_per_kg if m.price_per_kg is not None else found.price_per_kg,
            density=m.density if m.density is not None else found.density, diameter=m.diameter))

    @property
    def currency(self) -> str:
        return self.rates.currency

    def kind(self, reported: str | None) -> str | None:
        """The inventory's or default type a reported material name is, or None."""
        if not reported:
            return None
        found = self._kinds.get(reported, ...)
        if found is ...:
            found = self._kinds[reported] = self._kind(reported)
        return found

    def _kind(self, reported: str) -> str | None:
        whole = _norm(reported)
        known = {**{k: k for k in DENSITIES}, **{n: name for n, (name, _) in self.materials.items()}}
        if whole in known:
            return known[whole]
        words = [w for w in _WORDS.split(reported.upper()) if w]
        return next((known[w] for w in words if w in known), None)

    def _material(self, kind: str | None) -> Material | None:
        if not kind:
            return None
        found = self._by_kind.get(kind, ...)
        if found is ...:  # remembered: a year's report asks ~100,000 times for a handful of types
            entry = self.materials.get(_norm(kind))
            found = self._by_kind[kind] = entry[1] if entry else None
        return found

    def density(self, kind: str | None) -> float | None:
        m = self._material(kind)
        if m is not None and m.density is not None:
            return m.density
        return DENSITIES.get(kind) if kind else None

    def price_per_kg(self, kind: str | None) -> float | None:
        m = self._material(kind)
        return m.price_per_kg if m is not None else None

    def grams_of_mm(self, kind: str | None, mm: float) -> float | None:
        """Filament length to grams by the type's density and diameter; None without a density."""
        density = self.density(kind)
        if density is None:
            return None
        m = self._material(kind)
        diameter = m.diameter if m is not None else DIAMETER_MM
        return mm * math.pi * (diameter / 2) ** 2 / 1000 * density

    def rate(self, printer: str) -> Rate:
        """The printer's hour rate and start fee: its own, else its model's, else the default."""
        own = self.rates.printers.get(printer, Rate())
        entry = self.inv.printers.get(printer)
        model = self.rates.models.get(entry.model, Rate()) if entry is not None else Rate()
        pick = lambda key: next((v for v in (getattr(own, key), getattr(model, key), getattr(self.rates, key))
                                 if v is not None), None)
        return Rate(hour_rate=pick("hour_rate"), start_fee=pick("start_fee"), assumed_material=pick("assumed_material"))


def _norm(name: str) -> str:
    return _WORDS.sub("", name.upper())


__all__ = ["DENSITIES", "DIAMETER_MM", "Material", "Rate", "Rates", "Prices", "check"]
