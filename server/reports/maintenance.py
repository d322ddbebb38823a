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

    from server.reports.pdf import A4, fmt
    pages = []
    for start in range(0, len(report.maintenance), ROWS_PER_PAGE):
        fig = plt.figure(figsize=A4)
        fig.suptitle(f"{SHEETS[lang][KEY]} — {report.period.label}", fontsize=13, weight="bold", y=0.975)
        chunk = report.maintenance[start:start + ROWS_PER_PAGE]
        cells = [[fmt(v, c, lang) for v, c in zip(row, COLUMNS)] for row in table_rows(chunk, report.period, lang)]
        grid(fig.add_axes([0.04, 0.05, 0.92, 0.88]), headers(lang), cells, size=6.5, max_chars=30)
        pages.append(fig)
    return pages


def grid(ax, header: list[str], cells: list[list[str]], size: float, max_chars: int) -> None:
    """A table hanging from the top of ``ax`` (drawn by pdf.grid), each cell cut at ``max_chars``
    with "…" and each column as wide as its widest text, measured."""
    from server.reports import pdf
    ax.axis("off")
    box = ax.get_position()
    width_in, height_in = box.width * ax.figure.get_figwidth(), box.height * ax.figure.get_figheight()
    shown = [[t if len(t) <= max_chars else t[:max_chars - 1] + "…" for t in row] for row in cells]
    # Each column as wide as its widest text, measured (not guessed from its length); a table wider
    # than the page gets a smaller font rather than cells running into each other.
    measure = _measurer(ax.figure, size)
    pad_in = 0.04
    need = [max(measure(w) for w in h.split() + _longest(row[i] for row in shown)) for i, h in enumerate(header)]
    room = width_in - 2 * pad_in * len(header)
    if sum(need) > room:
        size, need = size * room / sum(need), [n * room / sum(need) for n in need]
    widths = [(n + 2 * pad_in) / (sum(need) + 2 * pad_in * len(header)) for n in need]
    wrapped = [_wrap(h, w * width_in - 2 * pad_in, measure) for h, w in zip(header, widths)]
    row_h = size * 1.9 / 72 / height_in
    head_h = row_h * (0.4 + 0.75 * max(t.count("\n") + 1 for t in wrapped))
    numeric = [all(_number(row[i]) for row in shown) for i in range(len(header))]
    pdf.grid(ax, widths, head_h, row_h, wrapped, shown, numeric, size, [pad_in / width_in] * len(widths),
             linespacing=1.0)


def _measurer(fig, size: float):
    """A function: a text's width in inches at ``size`` points (as drawn: by the figure's renderer)."""
    from matplotlib.font_manager import FontProperties
    renderer, font = fig.canvas.get_renderer(), FontProperties(size=size)
    scale = 1 / fig.dpi
    return lambda text: renderer.get_text_width_height_descent(text, font, ismath=False)[0] * scale if text else 0.0


def _longest(texts, n: int = 5) -> list[str]:
    """The ``n`` longest distinct texts: the widest is among them (measuring each cell costs)."""
    return sorted(set(texts), key=len)[-n:]


def _wrap(text: str, width_in: float, measure) -> str:
    """``text`` broken at spaces into lines no wider than ``width_in`` (a longer word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and measure(f"{lines[-1]} {word}") <= width_in:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _number(text: str) -> bool:
    return bool(text) and text.replace(",", "").replace(".", "").replace("\u00a0", "").replace(" ", "") \
        .lstrip("-").isdigit()
