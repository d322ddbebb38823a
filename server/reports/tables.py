"""A report as plain tables (header + rows of numbers and text), shared by the XLSX and CSV writers,
so both always carry the same figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.text import plain_or_none

from server.reports import aggregate, cost_tables, customer_rows, indicator_labels, key_figures
from server.reports import maintenance as report_maintenance
from server.reports.build import Report
from server.reports.labels import COLUMNS, KINDS, OUTCOMES, SHEETS, TEXT

JOB_COLUMNS = ("started", "ended", "outcome", "site", "printer", "organisation", "county", "file", "user",
               "duration_h", "filament_m_est", "error")
MONTH_COLUMNS = ("month", "printing_h", "in_network_h", "util_period")
PERCENT_COLUMNS = frozenset({"util_period", "util_available", "share_printing", "share_reached", "success_rate"})
YES_NO = frozenset({"not_in_previous", "new_enterprise", "served_in_period", "served_since_start",
                    "research_in_period", "research_since_start"})
KEY_COLUMNS = ("figure", "this_period", "previous_period", "change")
INDICATOR_COLUMNS = ("code", "code_2014", "indicator", "period_count", "first_in_period", "cumulative", "target",
                     "share_reached")
ENTERPRISE_LIST_COLUMNS = ("org_number", "enterprise", "size_class", "registered", "first_served", "new_enterprise",
                           "served_in_period", "served_since_start", "research_in_period", "research_since_start")
CUSTOMER_TABLES = (  # (table key, rows key in Report.customer_tables, columns)
    ("customers", "customers", customer_rows.CUSTOMER_COLUMNS),
    ("customer_kinds", "kinds", customer_rows.KIND_COLUMNS),
    ("customer_counties", "customer_counties", ("customer_county", *customer_rows.COUNTY_COLUMNS)),
    ("site_counties", "site_counties", ("county", *customer_rows.COUNTY_COLUMNS)),
    ("enterprises", "enterprises", customer_rows.ENTERPRISE_COLUMNS),
)


@dataclass
class Table:
    key: str  # key_figures | printer | site | ... | customers | ... | monthly | jobs
    title: str
    columns: tuple[str, ...]
    header: list[str]
    rows: list[list]
    percent_rows: set[int] = field(default_factory=set)  # rows whose numbers are all ratios (key figures)


TABLE_KEYS = ("key_figures", *aggregate.GROUPINGS, *(key for key, *_ in CUSTOMER_TABLES), "indicators",
              "indicator_enterprises", *cost_tables.KEYS, report_maintenance.KEY, "monthly", "jobs")


def tables(report: Report, lang: str) -> list[Table]:
    """Every table, in the order of TABLE_KEYS."""
    return [*report_tables(report, lang), job_table(report.jobs, report.users_shown, lang)]


def report_tables(report: Report, lang: str) -> list[Table]:
    """Every table but the job list."""
    out = [key_figure_table(report, lang)]
    out += [_grouping(report, g, lang) for g in aggregate.GROUPINGS]
    out += [customer_table(report, key, lang) for key, *_ in CUSTOMER_TABLES]
    out += [indicator_table(report, lang), indicator_enterprise_table(report, lang)]
    out += cost_tables.tables(report, lang)  # material, cost and outcomes (cost_tables.py)
    key = report_maintenance.KEY
    out.append(Table(key, SHEETS[lang][key], report_maintenance.COLUMNS, report_maintenance.headers(lang),
                     report_maintenance.table_rows(report.maintenance, report.period, lang)))
    out.append(_table("monthly", MONTH_COLUMNS, [[m[c] for c in MONTH_COLUMNS] for m in report.monthly], lang))
    return out


def job_table(jobs: list, users_shown: str, lang: str) -> Table:
    outcomes = OUTCOMES[lang]
    table = _table("jobs", JOB_COLUMNS, [_job(j, outcomes) for j in jobs], lang)
    if users_shown == "name":
        table.header[JOB_COLUMNS.index("user")] = COLUMNS[lang]["user_name"]
    return table


def _grouping(report: Report, grouping: str, lang: str) -> Table:
    columns = aggregate.KEY_COLUMNS[grouping] + aggregate.VALUE_COLUMNS
    rows = []
    for row in report.groupings[grouping]:
        values = [row.get(c) for c in columns]
        if grouping == "network":
            values[0] = TEXT[lang]["network_all"]
        rows.append(values)
    return _table(grouping, columns, rows, lang)


def customer_table(report: Report, key: str, lang: str) -> Table:
    _, rows_key, columns = next(t for t in CUSTOMER_TABLES if t[0] == key)
    rows = [[text(row.get(c), c, lang) for c in columns] for row in report.customer_tables.get(rows_key, [])]
    return _table(key, columns, rows, lang)


def text(value, column: str, lang: str):
    """Label keys of the customer view in words; numbers and names as they are."""
    t = TEXT[lang]
    if column == "kind":
        return KINDS[lang][value]
    if column in YES_NO:
        return "" if value is None else t["yes"] if value else t["no"]
    if column in ("customer", "customer_county") and value == customer_rows.UNATTRIBUTED:
        return t["unattributed"]
    if column == "customer" and isinstance(value, tuple):
        return t["private_persons"].format(n=value[1])
    return value


def indicator_table(report: Report, lang: str) -> Table:
    """The funder's indicators: codes, name, counts, target, share reached (indicator_rows)."""
    rows = [[row[c] for c in INDICATOR_COLUMNS] for row in indicator_rows(report, lang)]
    return _table("indicators", INDICATOR_COLUMNS, rows, lang)


def indicator_rows(report: Report, lang: str) -> list[dict]:
    found = report.indicators
    if found is None:
        return []
    names = indicator_labels.NAMES[lang]
    return [{**row, "key": row["indicator"], "indicator": names[row["indicator"]], "period_count": row["period"]}
            for row in found.rows()]


def indicator_enterprise_table(report: Report, lang: str) -> Table:
    """The enterprises behind the indicators, by organisation number: the funder's audit trail."""
    found, rows = report.indicators, []
    for e in found.enterprises if found is not None else []:
        first = e.first_ms
        values = {"org_number": e.org_number, "enterprise": e.name,
                  "size_class": indicator_labels.SIZES[lang].get(e.size, e.size),
                  "registered": "" if e.registered is None else str(e.registered),
                  "first_served": None if first is None else report.period.local(first).replace(tzinfo=None),
                  "new_enterprise": e.new, "served_in_period": e.period is not None,
                  "served_since_start": None if not found.has_project else e.project is not None,
                  "research_in_period": e.period is not None and e.period.research,
                  "research_since_start": None if not found.has_project else e.project is not None and e.project.research}
        rows.append([text(values[c], c, lang) for c in ENTERPRISE_LIST_COLUMNS])
    return _table("indicator_enterprises", ENTERPRISE_LIST_COLUMNS, rows, lang)


def key_figure_table(report: Report, lang: str) -> Table:
    rows, ratios = [], set()
    for i, row in enumerate(key_figures.rows(report)):
        values = [row["this_period"], row["previous_period"], row["change"]]
        if row["figure"] in key_figures.RATIOS:
            ratios.add(i)
            values = [TEXT[lang]["na"] if v is None else v for v in values[:2]] + values[2:]
        rows.append([COLUMNS[lang][row["figure"]], *values])
    table = _table("key_figures", KEY_COLUMNS, rows, lang)
    table.percent_rows = ratios
    if report.previous is not None:
        table.header[2] = f"{table.header[2]} ({report.previous.period.label})"
    table.header[1] = f"{table.header[1]} ({report.period.label})"
    return table


def _job(j, outcomes: dict) -> list:
    # Spelled out in JOB_COLUMNS' order (a test holds them equal): ~100,000 rows in a year's list.
    # Printer texts plain (common/text.py) even where the database holds them from before the
    # collector cleaned them: no control character reaches a spreadsheet cell.
    return [j.started, j.ended, outcomes[j.outcome], j.site, j.printer, j.organisation, j.county, plain_or_none(j.file),
            plain_or_none(j.user), j.duration_h, j.filament_m_est, plain_or_none(j.error)]


def _table(key: str, columns, rows, lang: str) -> Table:
    na = TEXT[lang]["na"]
    ratios = [i for i, column in enumerate(columns) if column in PERCENT_COLUMNS]
    for values in rows if ratios else ():  # a ratio over zero hours is "n/a", never a silent 0 %
        for i in ratios:
            if values[i] is None:
                values[i] = na
    return Table(key, SHEETS[lang][key], tuple(columns), [COLUMNS[lang][c] for c in columns], rows)
