"""The PDF staff attach as it is: key figures, notes and definitions; the customer view; charts
(utilisation per site, printing hours per month, jobs by outcome); a table per site.

Readers see names, not IDs (sites by their inventory name, organisations and customers by name),
percentages as percent, and a note that repeats for many printers as one line with a count.

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
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from common.text import no_mathtext  # noqa: E402
from server.reports import maintenance as report_maintenance  # noqa: E402
from server.reports.build import Report  # noqa: E402
from server.reports.labels import COLUMNS, DEFINITIONS, OUTCOMES, SHEETS, TEXT, collapsed_notes  # noqa: E402
from server.reports.tables import customer_table, indicator_rows  # noqa: E402

A4 = (8.27, 11.69)
LINES_PER_PAGE = 58
WRAP = 95
SUMMARY_FIGURES = ("printers", "in_network_h", "printing_h", "paused_h", "idle_h", "error_h", "offline_h",
                   "unknown_h", "not_in_network_h", "available_h", "util_period", "util_available",
                   "jobs_started", "jobs_done", "jobs_failed", "jobs_cancelled", "filament_m_est", "users",
                   "organisations_served")
SITE_COLUMNS = ("site_name", "printing_h", "available_h", "util_period", "util_available", "jobs_done",
                "jobs_failed", "jobs_cancelled")
CUSTOMER_COLUMNS = ("customer", "kind", "customer_county", "jobs_done", "printing_h", "filament_m_est")
KIND_COLUMNS = ("kind", "customers_served", "jobs_done", "printing_h", "filament_m_est", "share_printing")
COUNTY_COLUMNS = ("customers_served", "enterprises_served", "enterprises_sme", "jobs_done", "printing_h")
TOP_CUSTOMERS = 15


def write(report: Report, lang: str, path: Path) -> Path:
    # Names from the inventory and the printers are drawn as they are: "$$" is no mathtext.
    with no_mathtext(), PdfPages(path, metadata={"Title": f"{TEXT[lang]['title']} {report.period.label}"}) as pdf:
        for lines in _paginate(_summary_lines(report, lang, report.generated())):
            pdf.savefig(_text_page(lines))
        pdf.savefig(_customer_page(report, lang))
        from server.reports import cost_pdf  # (it draws with this module's tables)
        pdf.savefig(cost_pdf.page(report, lang))
        pdf.savefig(_indicator_page(report, lang))
        pdf.savefig(_charts_page(report, lang))
        for chunk in _chunks(report.groupings["site"], 30):
            pdf.savefig(_site_table_page(chunk, lang, f"{SHEETS[lang]['site']} — {report.period.label}"))
        for page in report_maintenance.pdf_pages(report, lang):
            pdf.savefig(page)
    plt.close("all")
    return Path(path)


def fmt(value, column: str, lang: str) -> str:
    if value is None:
        return TEXT[lang]["na"]
    if isinstance(value, str):
        return value
    if column.startswith("util_") or column.startswith("share_"):
        text = f"{value * 100:.1f} %"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:,.2f}"
    return localise(text, lang)


def localise(text: str, lang: str) -> str:
    """Swedish numbers: a space between thousands and a decimal comma."""
    return text.replace(",", "\u00a0").replace(".", ",") if lang == "sv" else text


def percent_axis(axis, lang: str) -> None:
    """Tick labels in percent ("25 %", "0.5 %") on an axis whose values are percent (0-100)."""
    def label(value, _):
        text = f"{value:.0f} %" if abs(value - round(value)) < 1e-9 else f"{value:.2g} %"
        return localise(text, lang)
    axis.set_major_formatter(FuncFormatter(label))


NAME_WIDTH = 34  # characters per line of a name beside a chart's bar; longer names wrap, never cut


def wrap_names(names: list[str], width: int = NAME_WIDTH) -> list[str]:
    """Names as a chart's tick labels: whole, wrapped onto lines of ``width`` characters."""
    return [textwrap.fill(str(n), width, break_long_words=False) for n in names]


def count_axis(axis) -> None:
    """Ticks on whole numbers only: a count has no 0.5."""
    axis.set_major_locator(MaxNLocator(integer=True))


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
    for text in collapsed_notes(report.notes, lang):
        lines += _wrapped("• " + text)
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


def table(ax, columns: tuple[str, ...], rows: list[list], lang: str, title: str = "", size: float = 7.5,
          header: list[str] | None = None, numeric: list[bool] | None = None, max_chars: int = 40,
          pad: float = 0.1) -> float:
    """A table filling ``ax``'s width and hanging from its top: columns as wide as their text,
    headers wrapped to fit, text left-aligned and numbers (formatted for ``lang``) right-aligned.
    ``pad``: each cell's margin, as a fraction of its width (matplotlib's default 0.1 on each side
    takes a fifth of a narrow table). Returns the height it takes, as a fraction of the figure's."""
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=size + 2, weight="bold", loc="left")
    labels = header or [COLUMNS[lang][c] for c in columns]
    cells = [[fmt(v, c, lang) for v, c in zip(row, columns)] for row in rows] or [[""] * len(columns)]
    numeric = numeric or [any(isinstance(row[i], (int, float)) for row in rows) for i in range(len(columns))]
    widths = _widths(labels, cells, max_chars)
    box = ax.get_position()
    width_in, height_in = box.width * ax.figure.get_figwidth(), box.height * ax.figure.get_figheight()
    wrapped = [textwrap.fill(h, max(6, int(w * width_in * 72 / (size * 0.55)))) for h, w in zip(labels, widths)]
    row_h = size * 1.9 / 72 / height_in
    head_h = row_h * (0.4 + 0.75 * max(text.count("\n") + 1 for text in wrapped))
    grid(ax, widths, head_h, row_h, wrapped, cells, numeric, size, [pad * w for w in widths])
    return (head_h + row_h * len(cells)) * box.height


def grid(ax, widths: list[float], head_h: float, row_h: float, header: list[str], cells: list[list[str]],
         numeric: list[bool], size: float, pads: list[float], linespacing: float = 1.2) -> None:
    """Draws a table hanging from the top of ``ax`` (axes fractions: column ``widths``, the header's
    and each row's height, each column's margin ``pads``): one text per cell, numbers right-aligned,
    the header on grey, and the rules as one line collection. matplotlib's Table (a patch and a text
    per cell, each laid out and drawn on its own) took half as long again for the same page."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle
    at = ax.transAxes
    lefts = [sum(widths[:i]) for i in range(len(widths))]
    right = sum(widths)
    ax.add_patch(Rectangle((0, 1 - head_h), right, head_h, facecolor="#eeeeee", edgecolor="none", transform=at))
    for x, w, text in zip(lefts, widths, header):
        ax.text(x + w / 2, 1 - head_h / 2, text, ha="center", va="center", fontsize=size, linespacing=linespacing,
                transform=at)
    for r, row in enumerate(cells):
        y = 1 - head_h - (r + 0.5) * row_h
        for x, w, pad, right_aligned, text in zip(lefts, widths, pads, numeric, row):
            ax.text(x + w - pad if right_aligned else x + pad, y, text, ha="right" if right_aligned else "left",
                    va="center", fontsize=size, transform=at)
    bottom = 1 - head_h - len(cells) * row_h
    rules = [[(0, y), (right, y)] for y in [1, 1 - head_h] + [1 - head_h - (r + 1) * row_h for r in range(len(cells))]]
    rules += [[(x, 1), (x, bottom)] for x in lefts + [right]]
    ax.add_collection(LineCollection(rules, colors="black", linewidths=0.5, transform=at))


def _widths(header: list[str], cells: list[list[str]], max_chars: int = 40) -> list[float]:
    """Each column's share of the width: its longest cell (up to ``max_chars``), or its header's longest word."""
    need = []
    for i, h in enumerate(header):
        longest = max([len(row[i]) for row in cells] + [max(len(word) for word in h.split()) if h.strip() else 1])
        need.append(min(max(longest, 4), max_chars) + 3)
    total = sum(need)
    return [n / total for n in need]


def _customer_page(report: Report, lang: str):
    t = TEXT[lang]
    fig = plt.figure(figsize=A4)
    fig.suptitle(f"{t['customer_view']} — {report.period.label}", fontsize=13, weight="bold", y=0.975)
    kinds = customer_table(report, "customer_kinds", lang)
    table(fig.add_axes([0.05, 0.72, 0.9, 0.21]), KIND_COLUMNS, _pick(kinds, KIND_COLUMNS), lang, t["customer_kinds"])
    customers = customer_table(report, "customers", lang)
    ranked = sorted(_pick(customers, CUSTOMER_COLUMNS)[:-1], key=lambda r: -(r[4] or 0))[:TOP_CUSTOMERS]
    ranked += _pick(customers, CUSTOMER_COLUMNS)[-1:]  # the unattributed row stays last
    table(fig.add_axes([0.05, 0.34, 0.9, 0.34]), CUSTOMER_COLUMNS, ranked, lang, t["top_customers"], size=7)
    columns = ("customer_county", *COUNTY_COLUMNS)
    rows = _pick(customer_table(report, "customer_counties", lang), columns)
    table(fig.add_axes([0.05, 0.03, 0.43, 0.27]), columns, rows, lang, t["customer_counties"], size=6.5)
    columns = ("county", *COUNTY_COLUMNS)
    rows = _pick(customer_table(report, "site_counties", lang), columns)
    table(fig.add_axes([0.52, 0.03, 0.43, 0.27]), columns, rows, lang, t["site_counties"], size=6.5)
    return fig


def _indicator_page(report: Report, lang: str):
    """The funder's indicators: counts only (the enterprises behind them are in the XLSX)."""
    from server.reports.indicator_labels import DEFINITIONS as DEFINITIONS_IND
    from server.reports.indicator_labels import TEXT as IND
    fig = plt.figure(figsize=A4)
    fig.suptitle(f"{IND[lang]['indicators']} — {report.period.label}", fontsize=13, weight="bold", y=0.975)
    columns = ("code", "code_2014", "indicator", "period_count", "first_in_period", "cumulative", "target",
               "share_reached")
    rows = [[r[c] if r[c] is not None or c in ("period_count", "first_in_period", "cumulative") else "–"
             for c in columns] for r in indicator_rows(report, lang)]
    ax = fig.add_axes([0.05, 0.55, 0.9, 0.38])
    y = 0.93 - table(ax, columns, rows, lang, size=7.5, max_chars=80, pad=0.04,
                     numeric=[False, False, False, True, True, True, True, True]) - 0.03
    found = report.indicators
    lines = [] if found is None or found.has_project else [IND[lang]["no_project"], ""]
    for text in DEFINITIONS_IND[lang]:
        lines += textwrap.wrap("• " + text, WRAP + 10, subsequent_indent="  ")
    for line in lines:
        fig.text(0.05, y, line, fontsize=8)
        y -= 0.015
    return fig


def _pick(tbl, columns: tuple[str, ...]) -> list[list]:
    index = [tbl.columns.index(c) for c in columns]
    return [[row[i] for i in index] for row in tbl.rows]


def _charts_page(report: Report, lang: str):
    t = TEXT[lang]
    fig, (ax_sites, ax_trend, ax_jobs) = plt.subplots(3, 1, figsize=A4, gridspec_kw={"hspace": 0.5})
    sites = report.groupings["site"]
    names = [row.get("site_name") or row["site"] for row in sites]
    ys = range(len(sites))
    ax_sites.barh([y + 0.2 for y in ys], [100 * (row["util_period"] or 0) for row in sites], 0.4,
                  label=t["of_period"], color="#1f77b4")
    ax_sites.barh([y - 0.2 for y in ys], [100 * (row["util_available"] or 0) for row in sites], 0.4,
                  label=t["of_available"], color="#ff7f0e")
    ax_sites.set_yticks(list(ys), wrap_names(names), fontsize=7)
    ax_sites.invert_yaxis()
    percent_axis(ax_sites.xaxis, lang)
    ax_sites.set_title(t["chart_sites"])
    ax_sites.legend(fontsize=8)
    months = report.monthly
    ax_trend.bar([m["month"] for m in months], [m["printing_h"] for m in months], color="#2ca02c")
    ax_trend.set_ylabel(t["hours"])
    ax_trend.set_title(t["chart_trend"])
    ax_trend.tick_params(axis="x", labelrotation=45 if len(months) > 4 else 0)
    _jobs_chart(ax_jobs, sites, names, lang)
    fig.subplots_adjust(left=0.32, right=0.95, top=0.95, bottom=0.06)  # NAME_WIDTH characters at 7 pt
    return fig


def _jobs_chart(ax, sites: list[dict], names: list[str], lang: str) -> None:
    # Horizontal, like the utilisation chart: site names stay readable however many there are.
    t = TEXT[lang]
    left = [0] * len(sites)
    ys = list(range(len(sites)))  # positions, not names: two sites of one name stay two bars
    for kind, colour in (("done", "#2ca02c"), ("failed", "#d62728"), ("cancelled", "#7f7f7f")):
        counts = [row[f"jobs_{kind}"] for row in sites]
        ax.barh(ys, counts, left=left, label=OUTCOMES[lang][kind], color=colour)
        left = [b + c for b, c in zip(left, counts)]
    ax.set_yticks(ys, wrap_names(names), fontsize=7)
    count_axis(ax.xaxis)
    ax.invert_yaxis()
    ax.set_xlabel(t["jobs"])
    ax.set_title(t["chart_jobs"])
    ax.legend(fontsize=8)


def _site_table_page(rows: list[dict], lang: str, title: str):
    fig = plt.figure(figsize=A4)
    fig.suptitle(title, fontsize=12, weight="bold", y=0.97)
    cells = [[row.get(c) if c != "site_name" else (row.get("site_name") or row["site"]) for c in SITE_COLUMNS]
             for row in rows]
    table(fig.add_axes([0.04, 0.05, 0.92, 0.88]), SITE_COLUMNS, cells, lang)
    return fig

