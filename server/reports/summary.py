"""The one-page summary for the funder's progress report: the page a project manager pastes in as it is.

One A4 page, Swedish unless ``--lang en``: key figures against the previous period, the enterprises
served (small/medium and large, new ones), figures per customer kind, utilisation per county of the
sites with a chart against the previous period, and how many notes the full report holds. The
figures are the same as the XLSX and CSV (tables.py), formatted as the full PDF formats them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from server.reports import key_figures  # noqa: E402
from common.text import no_mathtext  # noqa: E402
from server.reports.build import Report  # noqa: E402
from server.reports.labels import COLUMNS, TEXT  # noqa: E402
from server.reports.pdf import A4, fmt, localise, percent_axis, table  # noqa: E402
from server.reports.tables import customer_table  # noqa: E402

KIND_COLUMNS = ("kind", "customers_served", "jobs_done", "printing_h", "filament_m_est")
COUNTY_COLUMNS = ("county", "printers", "printing_h", "util_period", "util_available")
THIS, BEFORE = "#1f77b4", "#b0b0b0"


def write(report: Report, lang: str, path: Path, full_report: str = "") -> Path:
    t = TEXT[lang]
    # Names from the inventory are drawn as they are: "$$" is no mathtext.
    with no_mathtext(), PdfPages(path, metadata={"Title": f"{t['one_page_title']} {report.period.label}"}) as pdf:
        fig = plt.figure(figsize=A4)
        _header(fig, report, lang)
        _key_figures(fig.add_axes([0.06, 0.585, 0.88, 0.29]), report, lang)
        fig.text(0.06, 0.545, textwrap.fill(_enterprises_line(report, lang), 110), fontsize=8.5, va="top")
        kinds = customer_table(report, "customer_kinds", lang)
        index = [kinds.columns.index(c) for c in KIND_COLUMNS]
        table(fig.add_axes([0.06, 0.27, 0.43, 0.22]), KIND_COLUMNS, [[r[i] for i in index] for r in kinds.rows],
              lang, t["customer_kinds"], size=6.5)
        counties = [[row.get(c) for c in COUNTY_COLUMNS] for row in report.groupings["county"]]
        table(fig.add_axes([0.52, 0.27, 0.43, 0.22]), COUNTY_COLUMNS, counties, lang,
              t["util_per_county"].split(" (")[0], size=6.5)
        _county_chart(fig.add_axes([0.22, 0.08, 0.72, 0.16]), report, lang)
        notes = t["notes_count"].format(n=len(report.notes), file=full_report or "—")
        fig.text(0.06, 0.02, notes if report.notes else f"{t['notes']}: {t['none']}", fontsize=7.5)
        pdf.savefig(fig)
    plt.close("all")
    return Path(path)


def _header(fig, report: Report, lang: str) -> None:
    t = TEXT[lang]
    if report.network_name:
        fig.text(0.06, 0.965, report.network_name, fontsize=9, color="#555555")
    fig.text(0.06, 0.94, f"{t['one_page_title']} — {report.period.label}", fontsize=15, weight="bold")
    start = report.period.local(report.period.start_ms)
    if report.as_of_ms < report.period.end_ms:  # a running period: up to now
        end = f"{report.period.local(report.as_of_ms):%Y-%m-%d %H:%M}"
    else:  # the last moment of the period, so its last day shows (a quarter ends on 09-30, not 10-01)
        end = f"{report.period.local(report.period.end_ms - 1):%Y-%m-%d}"
    line = f"{t['period']}: {start:%Y-%m-%d} – {end}"
    if report.previous is not None:
        line += f"   {t['previous']}: {report.previous.period.label}"
    fig.text(0.06, 0.915, f"{line}   {t['generated']}: {report.generated():%Y-%m-%d %H:%M}", fontsize=8)


def _key_figures(ax, report: Report, lang: str) -> None:
    rows = []
    for row in key_figures.rows(report):
        key = row["figure"]
        column = key if key in key_figures.RATIOS else "value"
        previous = row["previous_period"]
        rows.append([COLUMNS[lang][key], fmt(row["this_period"], column, lang),
                     "" if report.previous is None else "–" if previous is None else fmt(previous, column, lang),
                     _change(row["change"], key, lang)])
    header = [COLUMNS[lang]["figure"], f"{COLUMNS[lang]['this_period']} ({report.period.label})",
              f"{COLUMNS[lang]['previous_period']} ({report.previous.period.label})" if report.previous else "",
              COLUMNS[lang]["change"]]
    table(ax, ("figure", "this", "previous", "change"), rows, lang, size=7.5, header=header,
          numeric=[False, True, True, True])


def _change(value, key: str, lang: str) -> str:
    if value is None:
        return ""
    if key in key_figures.RATIOS:
        return localise(f"{round(value * 100, 1) + 0.0:+.1f} ", lang) + TEXT[lang]["pp"]
    text = f"{value:+,}" if isinstance(value, int) else f"{round(value, 2) + 0.0:+,.2f}"
    return localise(text, lang)


def _enterprises_line(report: Report, lang: str) -> str:
    t = TEXT[lang]
    row = (report.customer_tables.get("enterprises") or [{}])[0]
    args = {"n": row.get("enterprises_served", 0), "sme": row.get("enterprises_sme", 0),
            "large": row.get("enterprises_large", 0)}
    if report.previous is None or row.get("enterprises_new") is None:
        return t["enterprises_line_first"].format(**args)
    return t["enterprises_line"].format(new=row["enterprises_new"], previous=report.previous.period.label, **args)


def _county_chart(ax, report: Report, lang: str) -> None:
    t = TEXT[lang]
    now = {row["county"]: row["util_available"] for row in report.groupings["county"]}
    before = {row["county"]: row["util_available"] for row in report.previous.groupings["county"]} \
        if report.previous is not None else {}
    counties = sorted(now)
    ys = range(len(counties))
    ax.barh([y - 0.2 for y in ys], [100 * (now[c] or 0) for c in counties], 0.4, color=THIS,
            label=f"{t['this']} ({report.period.label})")
    if before:
        ax.barh([y + 0.2 for y in ys], [100 * (before.get(c) or 0) for c in counties], 0.4, color=BEFORE,
                label=f"{t['previous']} ({report.previous.period.label})")
    ax.set_yticks(list(ys), counties, fontsize=7)
    ax.invert_yaxis()
    percent_axis(ax.xaxis, lang)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(t["util_per_county"], fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
