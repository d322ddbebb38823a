"""The PDF summary staff attach as it is: key figures, notes and definitions, then charts
(utilisation per site, printing hours per month, jobs by outcome) and a table per site.

Written with matplotlib alone (Agg backend, ``PdfPages``): the charts need matplotlib anyway, and
its PDF backend embeds the fonts (DejaVu Sans covers å, ä, ö) and writes vector text, so a second
PDF library (reportlab, fpdf2) would add a dependency without adding anything this summary needs.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from server.reports.build import Report  # noqa: E402
from server.reports.labels import COLUMNS, DEFINITIONS, OUTCOMES, SHEETS, TEXT, note_text  # noqa: E402

A4 = (8.27, 11.69)
LINES_PER_PAGE = 58
WRAP = 95
SUMMARY_FIGURES = ("printers", "in_network_h", "printing_h", "paused_h", "idle_h", "error_h", "offline_h",
                   "unknown_h", "not_in_network_h", "available_h", "util_period", "util_available",
                   "jobs_started", "jobs_done", "jobs_failed", "jobs_cancelled", "filament_m_est", "users",
                   "organisations_served")
SITE_COLUMNS = ("site", "printing_h", "available_h", "util_period", "util_available", "jobs_done", "jobs_failed",
                "jobs_cancelled")


def write(report: Report, lang: str, path: Path) -> Path:
    with PdfPages(path, metadata={"Title": f"{TEXT[lang]['title']} {report.period.label}"}) as pdf:
        for lines in _paginate(_summary_lines(report, lang, report.generated())):
            pdf.savefig(_text_page(lines))
        pdf.savefig(_charts_page(report, lang))
        for chunk in _chunks(report.groupings["site"], 30):
            pdf.savefig(_site_table_page(chunk, lang, f"{SHEETS[lang]['site']} — {report.period.label}"))
    plt.close("all")
    return Path(path)


def fmt(value, column: str, lang: str) -> str:
    if value is None:
        return TEXT[lang]["na"]
    if isinstance(value, str):
        return value
    if column.startswith("util_"):
        text = f"{value * 100:.1f} %"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.2f}"
    return text.replace(",", "\u00a0").replace(".", ",") if lang == "sv" else text


def _summary_lines(report: Report, lang: str, generated: datetime) -> list[tuple[str, str]]:
    t, cols = TEXT[lang], COLUMNS[lang]
    lines = [(f"{t['title']} — {report.period.label}", "title"),
             (f"{t['period']}: {_span(report)}   {t['time_zone']}: {report.period.tz}", "plain"),
             (f"{t['generated']}: {generated:%Y-%m-%d %H:%M}", "plain"), ("", "plain"),
             (t["summary"], "heading")]
    network = report.groupings["network"][0] if report.groupings["network"] else {}
    for key in SUMMARY_FIGURES:
        lines.append((f"{cols[key]}:\t{fmt(network.get(key), key, lang)}", "figure"))
    lines += [("", "plain"), (t["notes"], "heading")]
    for note in report.notes or []:
        lines += _wrapped("• " + note_text(note, lang))
    if not report.notes:
        lines.append((t["none"], "plain"))
    lines += [("", "plain"), (t["definitions"], "heading")]
    for text in DEFINITIONS[lang]:
        lines += _wrapped("• " + text)
    return lines


def _span(report: Report) -> str:
    start = report.period.local(report.period.start_ms)
    end = report.period.local(report.as_of_ms)
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"


def _wrapped(text: str) -> list[tuple[str, str]]:
    return [(line, "plain") for line in textwrap.wrap(text, WRAP, subsequent_indent="  ")]


def _paginate(lines: list) -> list[list]:
    return [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]


def _chunks(rows: list, size: int) -> list[list]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def _text_page(lines: list[tuple[str, str]]):
    fig = plt.figure(figsize=A4)
    y = 0.95
    for text, style in lines:
        if style == "figure":
            label, value = text.split("\t")
            fig.text(0.08, y, label, fontsize=9)
            fig.text(0.62, y, value, fontsize=9, ha="right", family="DejaVu Sans Mono")
        else:
            size, weight = {"title": (15, "bold"), "heading": (11, "bold")}.get(style, (9, "normal"))
            fig.text(0.06, y, text, fontsize=size, weight=weight)
        y -= 0.016 if style != "title" else 0.024
    return fig


def _charts_page(report: Report, lang: str):
    t = TEXT[lang]
    fig, (ax_sites, ax_trend, ax_jobs) = plt.subplots(3, 1, figsize=A4, gridspec_kw={"hspace": 0.5})
    sites = report.groupings["site"]
    names = [row["site"] for row in sites]
    ys = range(len(sites))
    ax_sites.barh([y + 0.2 for y in ys], [100 * (row["util_period"] or 0) for row in sites], 0.4,
                  label=t["of_period"], color="#1f77b4")
    ax_sites.barh([y - 0.2 for y in ys], [100 * (row["util_available"] or 0) for row in sites], 0.4,
                  label=t["of_available"], color="#ff7f0e")
    ax_sites.set_yticks(list(ys), names)
    ax_sites.invert_yaxis()
    ax_sites.set_xlabel("%")
    ax_sites.set_title(t["chart_sites"])
    ax_sites.legend(fontsize=8)
    months = report.monthly
    ax_trend.bar([m["month"] for m in months], [m["printing_h"] for m in months], color="#2ca02c")
    ax_trend.set_ylabel(t["hours"])
    ax_trend.set_title(t["chart_trend"])
    ax_trend.tick_params(axis="x", labelrotation=45 if len(months) > 4 else 0)
    _jobs_chart(ax_jobs, sites, lang)
    fig.subplots_adjust(left=0.2, right=0.95, top=0.95, bottom=0.06)
    return fig


def _jobs_chart(ax, sites: list[dict], lang: str) -> None:
    # Horizontal, like the utilisation chart: site names stay readable however many there are.
    t = TEXT[lang]
    names = [row["site"] for row in sites]
    left = [0] * len(sites)
    for kind, colour in (("done", "#2ca02c"), ("failed", "#d62728"), ("cancelled", "#7f7f7f")):
        counts = [row[f"jobs_{kind}"] for row in sites]
        ax.barh(names, counts, left=left, label=OUTCOMES[lang][kind], color=colour)
        left = [b + c for b, c in zip(left, counts)]
    ax.invert_yaxis()
    ax.set_xlabel(t["jobs"])
    ax.set_title(t["chart_jobs"])
    ax.legend(fontsize=8)


def _site_table_page(rows: list[dict], lang: str, title: str):
    fig = plt.figure(figsize=A4)
    fig.suptitle(title, fontsize=12, weight="bold", y=0.97)
    ax = fig.add_axes([0.04, 0.05, 0.92, 0.88])
    ax.axis("off")
    header = [textwrap.fill(COLUMNS[lang][c], 14) for c in SITE_COLUMNS]
    cells = [[fmt(row.get(c), c, lang) for c in SITE_COLUMNS] for row in rows] or [[""] * len(SITE_COLUMNS)]
    table = ax.table(cellText=cells, colLabels=header, loc="upper center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.scale(1, 2.2)
    return fig
