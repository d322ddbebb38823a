"""Regional utilisation: printing hours and utilisation per site, organisation and county.

Definitions follow the utilisation reports (server/reports): printing hours = time in the states
printing + finishing; utilisation = printing hours / hours in the period, per printer, so a
group's utilisation = its printing hours / (its printers x hours in the period).

InfluxQL cannot compute exact time-in-state from the ``state`` measurement: it would need the
time to the *next* change together with this change's state, and InfluxQL refuses to mix
elapsed() with plain fields. So these panels approximate from telemetry: the gaps between
consecutive printing/finishing samples of a printer, summed, leaving out gaps over two minutes
(a job boundary or an outage). That is exact to within one poll interval per job; the reports
are exact to the second. InfluxQL has no calendar months either: choose the month in the time
picker ("This month so far" by default, "Previous month" for the last full one).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common, dashboard

from dashboards import common as c
from dashboards.influxql import FILTER_REGION, InfluxQL, datasource, targets
from dashboards.panels import renamed, table_panel, transform, with_legend

MAX_GAP_MS = 120_000
PRINTING = "/^(printing|finishing)$/"
GROUPINGS = {
    "site": '"county", "organisation", "site"',
    "organisation": '"county", "organisation"',
    "county": '"county"',
}
HOW = ("Printing hours = time in printing + finishing, summed from the gaps between a printer's "
       "consecutive printing samples (gaps over 2 min left out), so within one poll interval per "
       "job of the exact figure in the reports. Utilisation = printing hours / (printers that "
       "reported in the range x hours in the range).")


def _printing_gaps(group_by: str) -> str:
    return f"""SELECT elapsed("seq", 1ms) AS "gap" FROM "telemetry"
               WHERE $timeFilter AND "state" =~ {PRINTING} AND {FILTER_REGION}
               GROUP BY "printer", {group_by}"""


def printing_hours_query(group_by: str) -> InfluxQL:
    return InfluxQL(f"""
        SELECT sum("gap") / 3600000 AS "printing_hours",
               sum("gap") / $__range_ms * 100 AS "printer_percent"
        FROM ({_printing_gaps(group_by)}) WHERE "gap" <= {MAX_GAP_MS} GROUP BY {group_by}""")


def printers_query(group_by: str) -> InfluxQL:
    return InfluxQL(f"""
        SELECT count("seq") AS "printers" FROM (
            SELECT last("seq") AS "seq" FROM "telemetry" WHERE $timeFilter AND {FILTER_REGION}
            GROUP BY "printer", {group_by})
        GROUP BY {group_by}""")


def utilisation_table(grouping: str) -> table.Panel:
    group_by = GROUPINGS[grouping]
    key = grouping
    panel = table_panel(f"Printing hours and utilisation by {grouping}", HOW,
                        printing_hours_query(group_by), printers_query(group_by))
    panel.transformations([
        transform("joinByField", {"byField": key, "mode": "outer"}),
        transform("calculateField", {
            "alias": "utilisation", "mode": "binary",
            "binary": {"left": "printer_percent", "operator": "/", "right": "printers"},
            "replaceFields": False}),
        transform("organize", {"excludeByName": {"Time": True, "Time 1": True, "Time 2": True,
                                                 "printer_percent": True}, "renameByName": {}}),
    ])
    panel.override_by_name("utilisation", [
        dashboard.DynamicConfigValue("unit", "percent"),
        dashboard.DynamicConfigValue("custom.cellOptions", {"type": "gauge", "mode": "gradient"}),
        dashboard.DynamicConfigValue("max", 100), dashboard.DynamicConfigValue("min", 0)])
    panel.override_by_name("printing_hours", [dashboard.DynamicConfigValue("unit", "h"),
                                              dashboard.DynamicConfigValue("decimals", 1)])
    return renamed(panel, {"printing_hours": "printing hours"})


def hours_per_day() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT sum("gap") / 3600000 AS "printing_hours" FROM ({_printing_gaps('"site"')})
        WHERE $timeFilter AND "gap" <= {MAX_GAP_MS}
        GROUP BY time(1d), "site" fill(0)""").time_series("$tag_site")
    return with_legend(timeseries.Panel().title("Printing hours per day by site").datasource(datasource())
            .description(HOW + " Days are UTC days.").targets(targets(query)).unit("h")
            .draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
            .stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)))


def jobs_by_outcome() -> barchart.Panel:
    query = InfluxQL(f"""
        SELECT sum("count") AS "jobs" FROM "job"
        WHERE $timeFilter AND "kind" =~ /^(done|failed|cancelled)$/ AND {FILTER_REGION}
        GROUP BY "site", "kind" """)
    return (barchart.Panel().title("Jobs by outcome per site").datasource(datasource())
            .description("Jobs that ended in the range: done, failed, cancelled (job events of "
                         "those kinds, as in the reports).")
            .targets(targets(query))
            .transformations([transform("groupingToMatrix", {
                "columnField": "kind", "rowField": "site", "valueField": "jobs",
                "emptyValue": "zero"})])
            .x_field("site\\kind").stacking(common.StackingMode.NORMAL)
            .override_by_name("done", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"})])
            .override_by_name("failed", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "red"})])
            .override_by_name("cancelled", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "orange"})]))


def build():
    grid = c.Grid()
    d = c.base("printfarm-utilisation", "Printfarm / Regional utilisation",
               "Printing hours, utilisation and jobs by site, organisation and county. "
               "Pick a month in the time picker.", "now/M")
    for variable in c.region_variables():
        d.with_variable(variable)
    d.with_panel(grid.place(utilisation_table("site"), 24, 8))
    d.with_panel(grid.place(utilisation_table("organisation"), 12, 7))
    d.with_panel(grid.place(utilisation_table("county"), 12, 7))
    d.with_panel(grid.place(hours_per_day(), 12, 9))
    d.with_panel(grid.place(jobs_by_outcome(), 12, 9))
    return d
