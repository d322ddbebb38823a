"""The ``printer_info`` point: a printer's capabilities as the directory publishes them (its
Info completed by the inventory; server/directory.py), one point per Info the agent sends, so
Grafana can show the directory as a table (dashboards/directory.py).

Tags: the printer's (county, listed, organisation, printer, site) and ``directory``, its site's
policy (live, capabilities, hidden) when the point was written: the Grafana table leaves hidden
ones out. Fields: model, volume_x/_y/_z, tools, nozzle_mm, nozzle_type, loaded and materials
(comma-separated), enclosed, queued_jobs, queued_s. No file name, no user: it goes to the
network's database as well as the organisation's (server/routing.py).
"""

from __future__ import annotations

import msgspec

from common import protocol
from server import lineproto
from server.directory import capabilities
from server.inventory import Inventory, Tags

MEASUREMENT = "printer_info"


def line(msg: protocol.Info, tags: Tags, inventory: Inventory) -> str:
    caps = capabilities(inventory, tags.printer, msgspec.to_builtins(msg))
    site = inventory.sites.get(tags.site)
    volume = caps["volume"] or [None] * 3
    pairs = [("model", caps["model"] or ""), ("volume_x", _f(volume[0])), ("volume_y", _f(volume[1])),
             ("volume_z", _f(volume[2])), ("tools", caps["tools"]),
             ("nozzle_mm", _f((caps["nozzles"] or [None])[0])),
             ("nozzle_type", caps["nozzle_type"] or ""), ("loaded", ", ".join(caps["loaded"])),
             ("materials", ", ".join(caps["materials"])), ("enclosed", caps["enclosed"]),
             ("queued_jobs", msg.queued_jobs if msg.queued_jobs is not None else 0), ("queued_s", _f(msg.queued_s))]
    tag_values = {"county": tags.county, "directory": site.directory if site else "hidden",
                  "listed": "true" if tags.listed else "false", "organisation": tags.organisation,
                  "printer": tags.printer, "site": tags.site}
    return lineproto.point(MEASUREMENT, tag_values, pairs, msg.ts)


def _f(value) -> float | None:
    return None if value is None else float(value)  # InfluxDB fixes a field's type at its first write
