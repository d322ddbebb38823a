"""A report as plain tables (header + rows of numbers and text), shared by the XLSX and CSV writers,
so both always carry the same figures."""

from __future__ import annotations

from dataclasses import dataclass

from server.reports import aggregate
from server.reports.build import Report
from server.reports.labels import COLUMNS, OUTCOMES, SHEETS, TEXT

JOB_COLUMNS = ("started", "ended", "outcome", "site", "printer", "organisation", "county", "file", "user",
               "duration_h", "filament_m_est", "error")
MONTH_COLUMNS = ("month", "printing_h", "in_network_h", "util_period")
PERCENT_COLUMNS = frozenset({"util_period", "util_available"})


@dataclass
class Table:
    key: str  # printer | site | organisation | county | network | monthly | jobs
    title: str
    columns: tuple[str, ...]
    header: list[str]
    rows: list[list]


def tables(report: Report, lang: str) -> list[Table]:
    out = [_grouping(report, g, lang) for g in aggregate.GROUPINGS]
    out.append(_table("monthly", MONTH_COLUMNS, [[m[c] for c in MONTH_COLUMNS] for m in report.monthly], lang))
    out.append(_table("jobs", JOB_COLUMNS, [_job(j, lang) for j in report.jobs], lang))
    return out


def _grouping(report: Report, grouping: str, lang: str) -> Table:
    columns = aggregate.KEY_COLUMNS[grouping] + aggregate.VALUE_COLUMNS
    rows = []
    for row in report.groupings[grouping]:
        values = [row.get(c) for c in columns]
        if grouping == "network":
            values[0] = TEXT[lang]["network_all"]
        rows.append(values)
    return _table(grouping, columns, rows, lang)


def _job(job, lang: str) -> list:
    values = [getattr(job, c) for c in JOB_COLUMNS]
    values[JOB_COLUMNS.index("outcome")] = OUTCOMES[lang][job.outcome]
    return values


def _table(key: str, columns, rows, lang: str) -> Table:
    na = TEXT[lang]["na"]
    for values in rows:  # a ratio over zero hours is "n/a", never a silent 0 %
        for i, column in enumerate(columns):
            if column in PERCENT_COLUMNS and values[i] is None:
                values[i] = na
    return Table(key, SHEETS[lang][key], tuple(columns), [COLUMNS[lang][c] for c in columns], rows)
