"""Alerts and events: alert history, job events and state changes, with annotations."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import common

from dashboards import common as c
from dashboards.influxql import ALERT, FILTER_PRINTER, JOB, STATE, InfluxQL, datasource, targets
from dashboards.panels import coloured_cells, table_panel, with_legend


def alert_history() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "printer", "site", "rule", "severity", "state", "message" FROM {ALERT}
        WHERE $timeFilter AND {FILTER_PRINTER} ORDER BY time DESC LIMIT 1000""")
    panel = table_panel("Alerts", "Every alert point (firing, repeat, resolved), newest first.", query)
    coloured_cells(panel, "state", c.ALERT_COLOURS)
    return coloured_cells(panel, "severity", {"critical": "red", "warning": "orange", "info": "blue"})


def alerts_over_time() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT count("state") AS "alerts" FROM {ALERT}
        WHERE $timeFilter AND "state" = 'firing' AND {FILTER_PRINTER}
        GROUP BY time($__interval), "rule" fill(0)""").time_series("$tag_rule")
    return with_legend(timeseries.Panel().title("Alerts fired per interval, by rule").datasource(datasource())
            .targets(targets(query)).draw_style(common.GraphDrawStyle.BARS).fill_opacity(80))


def job_events() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "printer", "site", "kind", "file", "user", "duration", "error" FROM {JOB}
        WHERE $timeFilter AND {FILTER_PRINTER} ORDER BY time DESC LIMIT 1000""")
    panel = table_panel("Job and connection events", "All job events, newest first.", query)
    return coloured_cells(panel, "kind", c.JOB_COLOURS)


def state_changes() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "printer", "site", "prev_state", "state", "error" FROM {STATE}
        WHERE $timeFilter AND {FILTER_PRINTER} ORDER BY time DESC LIMIT 1000""")
    panel = table_panel("State changes", "Every printer state change, newest first.", query)
    return coloured_cells(panel, "state", c.STATE_COLOURS)


def build():
    grid = c.Grid()
    d = c.base("printfarm-alerts", "Printfarm / Alerts and events",
               "Alert history, job events and state changes; alerts and failed jobs as annotations.",
               "now-24h")
    for variable in [*c.region_variables(), c.printer_variable()]:
        d.with_variable(variable)
    d.annotation(c.alert_annotation(FILTER_PRINTER)).annotation(c.failed_job_annotation(FILTER_PRINTER))
    d.with_panel(grid.place(alerts_over_time(), 24, 7))
    d.with_panel(grid.place(alert_history(), 24, 9))
    d.with_panel(grid.place(job_events(), 12, 10))
    d.with_panel(grid.place(state_changes(), 12, 10))
    return d
