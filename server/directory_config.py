"""The inventory's part of the regional directory (docs/directory.md): what a printer can do
where it cannot say so itself, and each site's access and publishing policy.

```toml
[models."Prusa MK4"]            # every printer of this model, unless its own table says otherwise
volume = [250, 210, 220]        # x, y, z in mm
nozzle_mm = 0.4
enclosed = false

[printers.oru-mk4-01]
site = "oru-makerspace"
model = "Prusa MK4"
materials = ["PLA", "PETG", "PETG-CF"]   # what the site keeps for it (the printer says what is loaded)
nozzle_type = "hardened_steel"

[sites.oru-makerspace]
directory = "live"              # "live", "capabilities" (no live state) or "hidden"
access = ["members", "students"]
contact = "makerspace@oru.se"
hours = "Mon-Fri 08-16"
```
"""

from __future__ import annotations

import msgspec

from common.configkit import Invalid
from common.text import name_problem

POLICIES = ("live", "capabilities", "hidden")
ACCESS = ("members", "companies", "students", "public")
CAPABILITY_KEYS = ("model", "volume", "nozzle_mm", "nozzle_type", "tools", "materials", "enclosed")


class Capabilities(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A model's capabilities (``[models."<model>"]``); a printer's own table has the same keys
    (inventory.PrinterEntry is a Capabilities; keyword-only, so a subclass's fields come first)."""
    volume: list[float] | None = None
    nozzle_mm: float | None = None
    nozzle_type: str | None = None
    tools: int | None = None
    materials: list[str] = []
    enclosed: bool | None = None

    def __post_init__(self):
        check_capabilities(self)


def check_capabilities(entry) -> None:
    """The checks of a model's or a printer's capability keys; errors name the key and the fix."""
    if entry.volume is not None and (len(entry.volume) != 3 or not all(0 < v <= 10_000 for v in entry.volume)):
        raise Invalid("volume", f"{entry.volume!r} is not a build volume",
                      "write it as [x, y, z] in mm, each above 0, e.g. [250, 210, 220]")
    if entry.nozzle_mm is not None and not 0 < entry.nozzle_mm <= 5:
        raise Invalid("nozzle_mm", f"{entry.nozzle_mm!r} is not a nozzle diameter", "write it in mm, e.g. 0.4")
    if entry.tools is not None and not 1 <= entry.tools <= 16:
        raise Invalid("tools", f"{entry.tools!r} is not a number of tools", "write 1 to 16")
    for i, text in enumerate([entry.nozzle_type or "", *entry.materials]):
        key = "nozzle_type" if i == 0 else f"materials[{i - 1}]"
        problem = name_problem(text) if text else None
        if problem or len(text) > 40:
            raise Invalid(key, f"{text[:40]!r} {problem or 'is longer than 40 characters'}",
                          "write a short plain name such as 'PETG-CF'")


def check_site_policy(site) -> None:
    if site.directory not in POLICIES:
        raise Invalid("directory", f"{site.directory!r} is not a policy",
                      "use 'live' (capabilities and availability), 'capabilities' (no live state) or 'hidden'")
    for i, who in enumerate(site.access):
        if who not in ACCESS:
            raise Invalid(f"access[{i}]", f"{who!r} is not a kind of user", f"use some of {', '.join(ACCESS)}")
    for key in ("contact", "hours"):
        problem = name_problem(getattr(site, key))
        if problem:
            raise Invalid(key, f"{getattr(site, key)[:40]!r} {problem}", "write it without that character")


def capabilities_of(inventory, printer: str) -> tuple[dict, dict]:
    """The inventory's capabilities of a printer: (its own table's keys, its model's), set ones only."""
    entry = inventory.printers.get(printer)
    if entry is None:
        return {}, {}
    model = inventory.models.get(entry.model) if entry.model else None
    own = {key: getattr(entry, key) for key in CAPABILITY_KEYS}
    of_model = {key: getattr(model, key) for key in CAPABILITY_KEYS[1:]} if model else {}
    return ({k: v for k, v in own.items() if v not in (None, "", [])},
            {k: v for k, v in of_model.items() if v not in (None, "", [])})
