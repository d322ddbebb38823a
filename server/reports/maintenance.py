"""The report's maintenance section (docs/maintenance.md): per printer with a service interval or
a recorded service, the services recorded in the period, the last service before the period's end,
and the counters since it as of that end, with what was due then. A sheet in the XLSX, a CSV file
and a PDF page; the words in both languages are here (merged into labels.py).

The network's report (no file names and no users) leaves the services' notes out too: they are
the labs' own words about their machines, kept for the lab's report.
"""

from __future__ import annotations

from typing import Callable, Iterable

from server import maintenance
from server.maintenance_intervals import Interval

KEY = "maintenance"
ENDED = ("done", "failed", "cancelled")  # the job events counted
COLUMNS = ("site", "printer", "services_in_period", "last_service", "last_note", "printing_since_h",
           "jobs_since", "filament_since_m", "service_interval", "service_due")

LABELS = {
    "en": {"services_in_period": "Services in period", "last_service": "Last service",
           "last_note": "Last service's note", "printing_since_h": "Printing hours since",
           "jobs_since": "Jobs since", "filament_since_m": "Filament since (m)",
           "service_interval": "Service interval", "service_due": "Due at the period's end"},
    "sv": {"services_in_period": "Service i perioden", "last_service": "Senaste service",
           "last_note": "Senaste servicens anteckning", "printing_since_h": "Utskriftstimmar sedan",
           "jobs_since": "Jobb sedan", "filament_since_m": "Filament sedan (m)",
           "service_interval": "Serviceintervall", "service_due": "Service behövs vid periodens slut"},
}
SHEETS = {"en": {KEY: "Maintenance"}, "sv": {KEY: "Underhåll"}}
WORDS = {"en": {"never": "never", "no": "no", "hours": "h", "jobs": "jobs", "months": "months"},
         "sv": {"never": "aldrig", "no": "nej", "hours": "h", "jobs": "jobb", "months": "månader"}}


def rows(client, inventory, period, as_of_ms: int, use_rollups: bool = True, sources=maintenance.HERE,
         notes: bool = True, period_jobs: Callable[[], Iterable[tuple]] | None = None) -> list[dict]:
    """The section's rows, one per printer with an interval or a service up to ``as_of_ms``.
    ``period_jobs``: a function that waits for the period's ended job events as the report read
    them (``maintenance.tally``): the counters then ask InfluxDB only for the jobs before the period."""
    last = maintenance.last_services(client, sources=sources, until_ms=as_of_ms)
    states = maintenance.states(client, inventory, use_rollups, as_of_ms, sources=sources, until_ms=as_of_ms,
                                last=last, period_jobs=(period.start_ms, period_jobs) if period_jobs else None)
    counted = maintenance.services_between(client, period.start_ms, as_of_ms, sources)
    out = []
    for s in states:
        key = (s.site, s.printer)
        if not s.counted:  # neither an interval nor a service
            continue
        when, note = last.get(key, (None, ""))
        out.append({"site": s.site, "printer": s.printer, "services_in_period": counted.get(key, 0),
                    "last_service": when, "last_note": note if notes else "",
                    "printing_since_h": s.counters.hours, "jobs_since": s.counters.jobs,
                    "filament_since_m": s.counters.filament_m, "service_interval": s.interval, "due": s.due})
    return out


def headers(lang: str) -> list[str]:
    from server.reports.labels import COLUMNS as REPORT_COLUMNS
    return [LABELS[lang].get(c) or REPORT_COLUMNS[lang][c] for c in COLUMNS]


def table_rows(found: list[dict], period, lang: str) -> list[list]:
    """The rows as table cells in COLUMNS' order, in ``lang``."""
    words = WORDS[lang]
    out = []
    for r in found:
        when = period.local(r["last_service"]).strftime("%Y-%m-%d %H:%M") if r["last_service"] else words["never"]
        cells = {**r, "last_service": when, "service_interval": interval_text(r["service_interval"], lang),
                 "service_due": "; ".join(r["due"]) or words["no"]}
        out.append([cells[c] for c in COLUMNS])
    return out


def interval_text(i: Interval | None, lang: str) -> str:
    if i is None:
        return ""
    w = WORDS[lang]
    parts = [f"{i.service_hours:g} {w['hours']}" if i.service_hours else "",
             f"{i.service_jobs} {w['jobs']}" if i.service_jobs else "",
             f"{i.service_months} {w['months']}" if i.service_months else ""]
    return ", ".join(p for p in parts if p)


ROWS_PER_PAGE = 40


def pdf_pages(report, lang: str) -> list:
    """The section's table, ROWS_PER_PAGE printers a page; none without rows."""
    import matplotlib.pyplot as plt

    from server.reports.pdf import A4, table
    pages = []
    for start in range(0, len(report.maintenance), ROWS_PER_PAGE):
        fig = plt.figure(figsize=A4)
        fig.suptitle(f"{SHEETS[lang][KEY]} — {report.period.label}", fontsize=13, weight="bold", y=0.975)
        chunk = report.maintenance[start:start + ROWS_PER_PAGE]
        table(fig.add_axes([0.04, 0.05, 0.92, 0.88]), COLUMNS, table_rows(chunk, report.period, lang), lang,
              size=6.5, header=headers(lang), max_chars=30, pad=0.04)
        pages.append(fig)
    return pages
