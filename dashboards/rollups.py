"""Panels over the hourly utilisation rollups, shared by the utilisation and funder dashboards.

The rollups (server/rollups) are the reports' own accounting cut into hours, so summing them over
Grafana's time range gives a report's figures for that period, to the millisecond (for ranges on
whole UTC hours: every local midnight in Sweden is one). Column names are the report's
(server/reports/aggregate.py) and are shown with the report's English labels. Jobs come from the
job events, counted by the time of the event, as in the reports.

InfluxQL divides by zero as 0: a group without available hours shows 0 % where the report says
"n/a"; its available hours (0) stand beside it.

The rollups carry the customer of the job under way (tags ``customer``, ``customer_kind``;
server/rollups/customers.py), so printing hours per customer kind and the distinct enterprises
served (customers of kind company with printing in the range) are the report's customer view.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, table
from grafana_foundation_sdk.models import common, dashboard

from dashboards.influxql import FILTER_REGION, JOB, ROLLUPS, InfluxQL, datasource, targets
from dashboards.panels import renamed, table_panel, transform
from server.reports.labels import COLUMNS, KINDS

MS_PER_HOUR = 3_600_000
STATES = ("printing", "paused", "idle", "error", "offline", "unknown")
# The report's grouping keys (server/reports/aggregate.py KEY_COLUMNS).
KEYS = {
    "printer": ("county", "organisation", "site", "printer"),
    "site": ("county", "organisation", "site"),
    "organisation": ("organisation",),
    "county": ("county",),
    "network": (),
}
OUTCOMES = {"done": "green", "failed": "red", "cancelled": "orange"}
LABELS = COLUMNS["en"]
# The report's enterprise columns and the customer kinds each counts (server/reports/customer_rows.py).
ENTERPRISES = {"enterprises_served": "company_(sme|large)", "enterprises_sme": "company_sme",
               "enterprises_large": "company_large"}
HOW = ("From the hourly rollups: the utilisation reports' own figures per printer and hour, summed "
       "over the time range (exact to the millisecond). Printing = printing, finishing and cancelling; "
       "unknown = no data, never counted as idle. Utilisation of period = printing / hours in the "
       "network; of available hours = printing / (in network - offline - unknown).")


def group_by(grouping: str, *more: str) -> str:
    tags = [f'"{t}"' for t in (*KEYS[grouping], *more)]
    return f" GROUP BY {', '.join(tags)}" if tags else ""


UTILISATION = ('sum("printing_ms") / sum("in_network_ms") AS "util_period", '
               'sum("printing_ms") / sum("available_ms") AS "util_available"')


def figures(states: tuple[str, ...] = STATES, ratios: bool = True) -> str:
    """The SELECT list: hours per state, in network, available, and both utilisations."""
    hours = [f'sum("{c}_ms") / {MS_PER_HOUR} AS "{c}_h"' for c in ("in_network", "available", *states)]
    return ", ".join(hours + ([UTILISATION] if ratios else []))


def figures_query(grouping: str, states: tuple[str, ...] = STATES, ratios: bool = True) -> InfluxQL:
    return InfluxQL(f"SELECT {figures(states, ratios)} FROM {ROLLUPS} WHERE $timeFilter AND {FILTER_REGION}"
                    f"{group_by(grouping)}")


def jobs_query(grouping: str, kinds: str = "done|failed|cancelled") -> InfluxQL:
    return InfluxQL(f'SELECT sum("count") AS "jobs" FROM {JOB} WHERE $timeFilter AND "kind" =~ /^({kinds})$/ '
                    f'AND {FILTER_REGION}{group_by(grouping, "kind")}')


def with_units(panel):
    """Hours as hours, utilisation as a percentage bar, every column under the report's label."""
    for column, label in LABELS.items():
        if column.endswith("_h"):
            panel.override_by_name(column, [dashboard.DynamicConfigValue("unit", "h"),
                                            dashboard.DynamicConfigValue("decimals", 1)])
    for column in ("util_period", "util_available"):
        panel.override_by_name(column, [
            dashboard.DynamicConfigValue("unit", "percentunit"), dashboard.DynamicConfigValue("min", 0),
            dashboard.DynamicConfigValue("max", 1), dashboard.DynamicConfigValue("decimals", 1),
            dashboard.DynamicConfigValue("custom.cellOptions", {"type": "gauge", "mode": "gradient"})])
    return renamed(panel, {c: LABELS[c] for c in LABELS if c.endswith("_h") or c.startswith("util_")})


def figures_table(grouping: str, title: str, states: tuple[str, ...] = STATES) -> table.Panel:
    panel = table_panel(title, HOW, figures_query(grouping, states))
    panel.transformations([transform("organize", {"excludeByName": {"Time": True}, "renameByName": {}})])
    return with_units(panel)


def jobs_by_outcome(grouping: str) -> barchart.Panel:
    key = KEYS[grouping][-1]
    panel = (barchart.Panel().title(f"Jobs by outcome per {grouping}").datasource(datasource())
             .description("Jobs that ended in the range: completed, failed, cancelled (job events of those "
                          "kinds, counted when the job ended, as in the reports).")
             .targets(targets(jobs_query(grouping)))
             .transformations([transform("groupingToMatrix", {
                 "columnField": "kind", "rowField": key, "valueField": "jobs", "emptyValue": "zero"})])
             .x_field(f"{key}\\kind").stacking(common.StackingMode.NORMAL))
    for outcome, colour in OUTCOMES.items():
        panel.override_by_name(outcome, [dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": colour})])
    return panel


def kind_hours_query() -> InfluxQL:
    return InfluxQL(f'SELECT sum("printing_ms") / {MS_PER_HOUR} AS "printing_h" FROM {ROLLUPS} '
                    f'WHERE $timeFilter AND {FILTER_REGION} GROUP BY "customer_kind"')


def enterprises_query(column: str) -> InfluxQL:
    """Distinct customers of the column's kinds with printing in the range: a customer's hours are
    summed first, so a point zeroed on a recomputation does not count."""
    return InfluxQL(f'SELECT count("printing_ms") AS "{column}" FROM (SELECT sum("printing_ms") AS "printing_ms" '
                    f'FROM {ROLLUPS} WHERE $timeFilter AND {FILTER_REGION} AND "customer_kind" =~ '
                    f'/^{ENTERPRISES[column]}$/ GROUP BY "customer") WHERE "printing_ms" > 0')


def hours_by_kind() -> barchart.Panel:
    panel = (barchart.Panel().title("Printing hours per customer kind").datasource(datasource())
             .description("Printing time in the customers' jobs, per kind of customer, as in the report's "
                          "customer view: a job's printing goes to the customer it is attributed to (file-name "
                          "tag, booking or user account), printing in no job or for no customer is unattributed.")
             .targets(targets(kind_hours_query()))
             .transformations([transform("organize", {"excludeByName": {"Time": True}, "renameByName": {}})])
             .x_field("customer_kind").unit("h").decimals(1)
             .mappings([dashboard.ValueMap(options={
                 kind: dashboard.ValueMappingResult(text=label, index=i)
                 for i, (kind, label) in enumerate(KINDS["en"].items())})]))
    return renamed(panel, {"printing_h": LABELS["printing_h"]})
