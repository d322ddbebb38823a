"""The fleet inventory: sites (organisation, county) and printers (site, model).

```toml
[sites.umu-makerspace]
name = "Umeå University Makerspace"
organisation = "Umeå universitet"
county = "Västerbotten"

[printers.umu-mk4-01]
site = "umu-makerspace"
model = "Prusa MK4"
```
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from common.configkit import ConfigError, Invalid, check_id, convert, load_toml

UNKNOWN = "unknown"
# What an InfluxDB tag value cannot carry alike in every version (server/lineproto.py).
NOT_IN_TAGS = re.compile(r"[\\\x00-\x1f\x7f]")


class Site(msgspec.Struct, forbid_unknown_fields=True):
    organisation: str
    county: str
    name: str = ""

    def __post_init__(self):
        for key in ("organisation", "county"):
            value = getattr(self, key)
            if not value.strip():
                raise Invalid(key, "is empty", f"write the site's {key}")
            if NOT_IN_TAGS.search(value):  # they become InfluxDB tag values
                raise Invalid(key, f"{value!r} holds a backslash or a control character",
                              "write the name without them")


class PrinterEntry(msgspec.Struct, forbid_unknown_fields=True):
    site: str
    model: str = ""
    name: str = ""
    added: str | None = None  # ISO date the printer joined the network, for reports


class Inventory(msgspec.Struct, forbid_unknown_fields=True):
    sites: dict[str, Site] = {}
    printers: dict[str, PrinterEntry] = {}

    def __post_init__(self):
        for site_id in self.sites:
            check_id(f"sites.{site_id}", site_id)
        for printer_id, entry in self.printers.items():
            check_id(f"printers.{printer_id}", printer_id)
            if entry.site not in self.sites:
                raise Invalid(f"printers.{printer_id}.site", f"site {entry.site!r} is not defined",
                              f"add a [sites.{entry.site}] table or correct the site")

    def tags(self, site: str, printer: str) -> "Tags":
        """Tags for a message from ``site``/``printer``; unlisted printers are flagged, not dropped."""
        entry = self.printers.get(printer)
        site_info = self.sites.get(site)
        listed = entry is not None and entry.site == site
        return Tags(
            printer=printer,
            site=site,
            organisation=site_info.organisation if site_info else UNKNOWN,
            county=site_info.county if site_info else UNKNOWN,
            listed=listed,
        )


class Tags(msgspec.Struct, frozen=True):
    printer: str
    site: str
    organisation: str
    county: str
    listed: bool


def load(path: str | Path) -> Inventory:
    return convert(load_toml(path), Inventory, str(path))


def from_dict(data: dict, source: str = "<inventory>") -> Inventory:
    return convert(data, Inventory, source)


__all__ = ["Inventory", "Site", "PrinterEntry", "Tags", "ConfigError", "UNKNOWN", "load", "from_dict"]
