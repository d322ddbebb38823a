"""The regional printer directory (docs/directory.md) as a Grafana table, on the network's
dashboards: every printer whose agent told its capabilities (the ``printer_info`` points,
server/directory_points.py), as completed by the inventory, leaving out sites whose policy is
``hidden``. Live availability (time until free, bookings) is the collector's answer:
``/api/directory``, the status page's "find a printer" view and ``printfarm-server directory``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table

from dashboards import common as c
from dashboards.influxql import FILTER_REGION, InfluxQL
from dashboards.panels import renamed, table_panel
from server.store.layout import long

INFO = long("printer_info")
FIELDS = ("model", "volume_x", "volume_y", "volume_z", "nozzle_mm", "nozzle_type", "loaded", "materials",
          "enclosed", "queued_jobs")


def directory_table() -> table.Panel:
    selected = ", ".join(f'last("{f}") AS "{f}"' for f in FIELDS)
    query = InfluxQL(f"""
        SELECT {selected} FROM {INFO}
        WHERE "directory" != 'hidden' AND {FILTER_REGION}
        GROUP BY "county", "organisation", "site", "printer" """)
    panel = table_panel("Printer directory", "What each published printer can do: build volume, nozzle, materials "
                        "loaded (loaded) and kept (materials), enclosure, its own job queue; latest per printer.",
                        query)
    return renamed(panel, {"volume_x": "X mm", "volume_y": "Y mm", "volume_z": "Z mm", "nozzle_mm": "nozzle mm",
                           "queued_jobs": "queued jobs"})


def build():
    grid = c.Grid()
    d = c.base("printfarm-directory", "Printfarm / Printer directory",
               "Which printer in the network can do a job: capabilities by county (docs/directory.md).", "now-30d")
    for variable in c.region_variables(INFO):
        d.with_variable(variable)
    d.with_panel(grid.place(directory_table(), 24, 14))
    return d
