"""Funder report: a period's key figures for the network, by county and by organisation, from the
hourly rollups and the job events (dashboards/rollups.py), equal to the utilisation report of the
same period. The period is Grafana's time range: the previous quarter by default, in Swedish time
like the reports ("Previous fiscal quarter" in the picker; the fiscal year starts in January).
Printing hours per customer kind and the enterprises served come from the rollups' customer tags
(the report's customer view). Which enterprises are *new* against the previous period stays with
the report: InfluxQL cannot compare the customers of two ranges (docs/rollups.md).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common, dashboard

from dashboards import common as c
from dashboards import rollups as r
from dashboards.influxql import FILTER_REGION, ROLLUPS, InfluxQL, datasource, targets
from dashboards.panels import renamed

TIME_ZONE = "Europe/Stockholm"  # the reports' default: quarters start at Swedish midnight
KINDS = "started|done|failed|cancelled"


def _stat(title: str, description: str, *queries) -> stat.Panel:
    return (stat.Panel().title(title).description(description).datasource(datasource())
            .targets(targets(*queries)).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(cb.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/.*/")))


def key_hours() -> stat.Panel:
    panel = _stat("Hours in the period", "The whole network: printing hours, hours in the network (printers "
                  "before their first data left out) and available hours (neither offline nor without data).",
                  r.figures_query("network", ("printing",), ratios=False))
    panel.unit("h").decimals(0)
    return renamed(panel, {c: r.LABELS[c] for c in ("printing_h", "in_network_h", "available_h")})


def key_utilisation() -> stat.Panel:
    query = InfluxQL(f"SELECT {r.UTILISATION} FROM {ROLLUPS} WHERE $timeFilter AND {FILTER_REGION}")
    panel = _stat("Utilisation", "Printing hours / hours in the network, and / available hours.", query)
    panel.unit("percentunit").decimals(1).min(0).max(1)
    return renamed(panel, {c: r.LABELS[c] for c in ("util_period", "util_available")})


def key_jobs() -> stat.Panel:
    panel = _stat("Jobs", "Jobs started in the period, and jobs that ended in it by outcome.",
                  r.jobs_query("network", KINDS).time_series("$tag_kind"))
    panel.reduce_options(cb.ReduceDataOptions().values(False).calcs(["sum"]).fields(""))
    panel.color_mode(common.BigValueColorMode.BACKGROUND)
    for outcome, colour in {**r.OUTCOMES, "started": "blue"}.items():
        panel.override_by_name(outcome, [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": colour})])
    return panel


def enterprises() -> stat.Panel:
    panel = _stat("Enterprises served", "Distinct customers of kind company with printing in the period at "
                  "the chosen sites, small and medium-sized and large separately (the report's enterprise "
                  "figures). Which are new against the previous period: see the report.",
                  *(r.enterprises_query(column) for column in r.ENTERPRISES))
    panel.no_value("0").decimals(0)
    return renamed(panel, {column: r.LABELS[column] for column in r.ENTERPRISES})


def build():
    grid = c.Grid()
    d = c.base("printfarm-funder", "Printfarm / Funder report",
               "The period's printing hours, utilisation, jobs, enterprises served and hours per customer "
               "kind for the network, by county and by organisation: the report's figures. The period is "
               "the time range.",
               "now-1fQ/fQ")
    d.time("now-1fQ/fQ", "now-1fQ/fQ").timezone(TIME_ZONE).refresh("")
    for variable in c.region_variables(ROLLUPS):
        d.with_variable(variable)
    d.with_panel(grid.place(key_hours(), 8, 5))
    d.with_panel(grid.place(key_utilisation(), 6, 5))
    d.with_panel(grid.place(key_jobs(), 10, 5))
    d.with_panel(grid.place(enterprises(), 10, 7))
    d.with_panel(grid.place(r.hours_by_kind(), 14, 7))
    d.with_panel(grid.place(r.figures_table("county", "By county", ("printing",)), 14, 8))
    d.with_panel(grid.place(r.jobs_by_outcome("county"), 10, 8))
    d.with_panel(grid.place(r.figures_table("organisation", "By organisation", ("printing",)), 14, 9))
    d.with_panel(grid.place(r.jobs_by_outcome("organisation"), 10, 9))
    return d
