"""Regional utilisation: hours in each state and utilisation per printer, site, organisation and
county, from the hourly rollups (dashboards/rollups.py): the same figures as a utilisation report
of the time range. Choose the period in the time picker ("This month so far" by default,
"Previous month" for the last full one); whole days in Swedish time are whole UTC hours, so any
range from midnight to midnight is exact.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.models import common

from dashboards import common as c
from dashboards import rollups as r
from dashboards.influxql import FILTER_REGION, ROLLUPS, InfluxQL, datasource, targets
from dashboards.panels import with_legend


def hours_per_day() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT sum("printing_ms") / {r.MS_PER_HOUR} AS "printing_h" FROM {ROLLUPS}
        WHERE $timeFilter AND {FILTER_REGION}
        GROUP BY time(1d), "site" fill(0)""").time_series("$tag_site")
    return with_legend(timeseries.Panel().title("Printing hours per day by site").datasource(datasource())
            .description(r.HOW + " Days are UTC days.").targets(targets(query)).unit("h")
            .draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
            .stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)))


def build():
    grid = c.Grid()
    d = c.base("printfarm-utilisation", "Printfarm / Regional utilisation",
               "Hours in each state and utilisation by printer, site, organisation and county, exactly "
               "as the reports count them. Pick the period in the time picker.", "now/M")
    for variable in c.region_variables(ROLLUPS):
        d.with_variable(variable)
    d.with_panel(grid.place(r.figures_table("county", "Utilisation by county"), 12, 7))
    d.with_panel(grid.place(r.figures_table("organisation", "Utilisation by organisation"), 12, 7))
    d.with_panel(grid.place(r.figures_table("site", "Utilisation by site"), 24, 8))
    d.with_panel(grid.place(r.figures_table("printer", "Utilisation by printer"), 24, 10))
    d.with_panel(grid.place(hours_per_day(), 12, 9))
    d.with_panel(grid.place(r.jobs_by_outcome("site"), 12, 9))
    return d
