"""Printer detail: temperatures, progress, state timeline, job history and maintenance of chosen printers."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common, dashboard

from dashboards import common as c, panels
from dashboards.influxql import FILTER_PRINTER, JOB, SERVICE, STATE, InfluxQL, datasource, targets
from dashboards.panels import coloured_cells, renamed, table_panel, with_legend


def temperatures() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT mean("tool0_actual") AS "nozzle", mean("tool0_target") AS "nozzle target",
               mean("bed_actual") AS "bed", mean("bed_target") AS "bed target"
        FROM "telemetry" WHERE $timeFilter AND {FILTER_PRINTER}
        GROUP BY time($__interval), "printer" fill(null)""").time_series("$tag_printer $col")
    return with_legend(timeseries.Panel().title("Temperatures: actual vs target").datasource(datasource())
            .description("Nozzle (tool0) and bed, actual and target, mean per interval.")
            .targets(targets(query)).unit("celsius").span_nulls(False)
            .override_by_regexp("/target/", [
                dashboard.DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})]))


def progress() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT last("progress") AS "progress" FROM "telemetry"
        WHERE $timeFilter AND {FILTER_PRINTER}
        GROUP BY time($__interval), "printer" fill(null)""").time_series("$tag_printer")
    return with_legend(timeseries.Panel().title("Job progress").datasource(datasource())
            .description("Percent of the current job's file printed (OctoPrint's completion).")
            .targets(targets(query)).unit("percent").min(0).max(100))


def now() -> stat.Panel:
    query = InfluxQL(f"""
        SELECT last("state") AS "state", "progress", "print_time" FROM "telemetry"
        WHERE $timeFilter AND {FILTER_PRINTER} GROUP BY "printer" """)
    return (stat.Panel().title("Now").datasource(datasource())
            .description("Latest state, progress and time printed so far, per printer.")
            .targets(targets(query))
            .reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/.*/"))
            .mappings(c.value_colours(c.STATE_COLOURS)).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .override_by_name("progress", [dashboard.DynamicConfigValue("unit", "percent")])
            .override_by_name("print_time", [dashboard.DynamicConfigValue("unit", "s")]))


def state_timeline() -> statetimeline.Panel:
    query = InfluxQL(f"""
        SELECT "state" FROM {STATE} WHERE $timeFilter AND {FILTER_PRINTER}
        GROUP BY "printer" """).time_series("$tag_printer")
    return panels.state_timeline(
        "State timeline", "Exact state changes from the state measurement. The state before the "
        "first change in the range is not shown until that change.", query, common.VisibilityMode.AUTO)


def job_history() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "printer", "kind", "file", "user", "duration", "print_time", "filament_mm", "error"
        FROM {JOB} WHERE $timeFilter AND {FILTER_PRINTER}
        AND "kind" =~ /^(started|done|failed|cancelled|paused|resumed)$/
        ORDER BY time DESC LIMIT 500""")
    panel = table_panel("Job history", "Job events, newest first. duration = started to end "
                        "(wall clock); print_time = OctoPrint's own.", query)
    coloured_cells(panel, "kind", c.JOB_COLOURS)
    for column in ("duration", "print_time"):
        panel.override_by_name(column, [dashboard.DynamicConfigValue("unit", "s")])
    panel.override_by_name("filament_mm", [dashboard.DynamicConfigValue("unit", "lengthmm")])
    return renamed(panel, {"filament_mm": "filament (slicer estimate)"})


def state_changes() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "printer", "state", "prev_state", "state_text", "error" FROM {STATE}
        WHERE $timeFilter AND {FILTER_PRINTER} ORDER BY time DESC LIMIT 500""")
    panel = table_panel("State changes", "Every state change with OctoPrint's text and error.", query)
    coloured_cells(panel, "state", c.STATE_COLOURS)
    return panel


def maintenance() -> table.Panel:
    query = InfluxQL(f"""
        SELECT last("due") AS "due", "last_service", "hours", "jobs", "filament_m"
        FROM {SERVICE} WHERE $timeFilter AND {FILTER_PRINTER} GROUP BY "printer" """)
    panel = table_panel("Maintenance", "Per printer with a service interval (docs/maintenance.md): what is due, "
                        "the last service recorded, and printing hours, jobs and filament since it, as the "
                        "collector last counted them. Record a service with `printfarm-server maintenance "
                        "record PRINTER --note ...`.", query)
    panel.override_by_name("hours", [dashboard.DynamicConfigValue("unit", "h"),
                                     dashboard.DynamicConfigValue("decimals", 1)])
    panel.override_by_name("filament_m", [dashboard.DynamicConfigValue("unit", "lengthm")])
    return renamed(panel, {"last_service": "last service", "filament_m": "filament", "hours": "printing hours"})


def build():
    grid = c.Grid()
    d = c.base("printfarm-printer", "Printfarm / Printer detail",
               "Temperatures, progress, state timeline and job history of the chosen printers.")
    for variable in [*c.region_variables(), c.printer_variable()]:
        d.with_variable(variable)
    d.annotation(c.alert_annotation(FILTER_PRINTER)).annotation(c.failed_job_annotation(FILTER_PRINTER))
    d.with_panel(grid.place(now(), 24, 5))
    d.with_panel(grid.place(temperatures(), 12, 9))
    d.with_panel(grid.place(progress(), 12, 9))
    d.with_panel(grid.place(state_timeline(), 24, 7))
    d.with_panel(grid.place(job_history(), 24, 10))
    d.with_panel(grid.place(state_changes(), 24, 8))
    d.with_panel(grid.place(maintenance(), 24, 6))
    return d
