"""Fleet overview: what every printer is doing now, how many are in each state, open alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import piechart, stat, statetimeline, table
from grafana_foundation_sdk.models import common, dashboard

from dashboards import common as c, panels
from dashboards.influxql import AGENT, ALERT, FILTER_REGION, JOB, InfluxQL, datasource, targets
from dashboards.panels import coloured_cells, renamed, table_panel, transform

REGION_TAGS = '"county", "organisation", "site", "printer"'


def printers_now() -> table.Panel:
    # One selector (last) plus plain fields: InfluxQL returns the other fields of that same
    # point, and its time is when the printer was last heard from.
    query = InfluxQL(f"""
        SELECT last("state") AS "state", "state_text", "progress", "print_time", "file", "user"
        FROM "telemetry" WHERE $timeFilter AND {FILTER_REGION} GROUP BY {REGION_TAGS}""")
    panel = table_panel(
        "Printers now",
        "Each printer's latest telemetry in the time range: state, job file, progress and time "
        "left. 'Last seen' is that sample's time; a printer whose agent went silent keeps its "
        "last state here, so check 'Last seen' and the Agents table.", query)
    panel.sort_by([cb.TableSortByFieldState().display_name("printer")])
    coloured_cells(panel, "state", c.STATE_COLOURS)
    panel.override_by_name("progress", [
        dashboard.DynamicConfigValue("unit", "percent"), dashboard.DynamicConfigValue("min", 0),
        dashboard.DynamicConfigValue("max", 100),
        dashboard.DynamicConfigValue("custom.cellOptions", {"type": "gauge", "mode": "basic"})])
    panel.override_by_name("print_time", [dashboard.DynamicConfigValue("unit", "s")])
    return renamed(panel, {"Time": "Last seen", "state_text": "OctoPrint says", "print_time": "Printing for",
                           "file": "Job file"})


def counts_by_state() -> piechart.Panel:
    query = InfluxQL(f"""
        SELECT last("state") AS "state" FROM "telemetry"
        WHERE $timeFilter AND {FILTER_REGION} GROUP BY "printer" """)
    return (piechart.Panel().title("Printers by state").datasource(datasource())
            .description("How many printers are in each state now (latest sample per printer).")
            .targets(targets(query))
            .with_transformation(transform("groupBy", {"fields": {
                "state": {"aggregations": [], "operation": "groupby"},
                "printer": {"aggregations": ["count"], "operation": "aggregate"}}}))
            .reduce_options(cb.ReduceDataOptions().values(True).calcs([]).fields(""))
            .pie_type("donut").display_labels(["name", "value"]))


def state_timeline() -> statetimeline.Panel:
    query = InfluxQL(f"""
        SELECT last("state") FROM "telemetry" WHERE $timeFilter AND {FILTER_REGION}
        GROUP BY time($__interval), "printer" fill(none)""").time_series("$tag_printer")
    return panels.state_timeline(
        "State over time", "Each printer's state per interval (last telemetry sample in it); gaps "
        "are intervals with no telemetry at all.", query, common.VisibilityMode.NEVER)


def open_alerts() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "state", "message" FROM (
            SELECT last("state") AS "state", "message" FROM {ALERT}
            WHERE $timeFilter AND {FILTER_REGION}
            GROUP BY "county", "organisation", "site", "printer", "rule", "severity")
        WHERE "state" != 'resolved' GROUP BY "site", "printer", "rule", "severity" """)
    panel = table_panel(
        "Open alerts",
        "Alerts whose latest point is firing or repeat (not resolved), over the last 7 days.",
        query)
    panel.time_from("7d")
    coloured_cells(panel, "state", c.ALERT_COLOURS)
    coloured_cells(panel, "severity", {"critical": "red", "warning": "orange", "info": "blue"})
    return renamed(panel, {"Time": "Since"})


def jobs_by_outcome() -> stat.Panel:
    query = InfluxQL(f"""
        SELECT sum("count") AS "jobs" FROM {JOB}
        WHERE $timeFilter AND "kind" =~ /^(done|failed|cancelled)$/ AND {FILTER_REGION}
        GROUP BY "kind" """).time_series("$tag_kind")
    return (stat.Panel().title("Jobs ended in range").datasource(datasource())
            .description("Jobs that ended in the time range, by outcome.")
            .targets(targets(query)).reduce_options(cb.ReduceDataOptions().calcs(["sum"]))
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .override_by_name("done", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "green"})])
            .override_by_name("failed", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "red"})])
            .override_by_name("cancelled", [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "orange"})]))


def agents() -> table.Panel:
    query = InfluxQL(f"""
        SELECT last("state") AS "state", "dropped", "printers" FROM {AGENT}
        WHERE $timeFilter GROUP BY "agent" """)
    panel = table_panel(
        "Agents", "Each agent's last online/offline message in the last 30 days (sent at connect "
        "and by the broker's last-will), and how many messages its outbox has had to drop.", query)
    panel.time_from("30d")
    coloured_cells(panel, "state", {"online": "green", "offline": "red"})
    return renamed(panel, {"Time": "Since"})


def build():
    grid = c.Grid()
    d = c.base("printfarm-fleet", "Printfarm / Fleet overview",
               "Every printer's current state, counts by state, open alerts.", "now-1h")
    for variable in c.region_variables():
        d.with_variable(variable)
    d.annotation(c.alert_annotation(FILTER_REGION)).annotation(c.failed_job_annotation(FILTER_REGION))
    d.with_panel(grid.place(counts_by_state(), 6, 8))
    d.with_panel(grid.place(jobs_by_outcome(), 6, 8))
    d.with_panel(grid.place(open_alerts(), 12, 8))
    d.with_panel(grid.place(printers_now(), 24, 12))
    d.with_panel(grid.place(state_timeline(), 24, 10))
    d.with_panel(grid.place(agents(), 24, 6))
    return d
