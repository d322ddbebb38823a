"""The one-page summary for the funder's progress report: the page a project manager pastes in as it is.

One A4 page, Swedish unless ``--lang en``: key figures against the previous period, the funder's
indicators for the period and since the project's start against their targets (counts only: the
enterprises behind them are in the XLSX), a sentence on the enterprises served (per size class,
not served in the previous period, new), figures per customer kind, utilisation per county of the
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

from server.reports import indicator_labels, key_figures  # noqa: E402
from common.text import no_mathtext  # noqa: E402
from server.reports.build import Report  # noqa: E402
from server.reports.labels import COLUMNS, TEXT  # noqa: E402
from server.reports.pdf import A4, fmt, localise, percent_axis, table, wrap_names  # noqa: E402
from server.reports.tables import customer_table, indicator_rows  # noqa: E402

KIND_COLUMNS = ("kind", "customers_served", "jobs_done", "printing_h", "filament_m_est")
COUNTY_COLUMNS = ("county", "printers", "printing_h", "util_available")  # as the chart below; both in the full report
THIS, BEFORE = "#1f77b4", "#b0b0b0"


def write(report: Report, lang: str, path: Path, full_report: str = "") -> Path:
    t = TEXT[lang]
    # Names from the inventory are drawn as they are: "$$" is no mathtext.
    with no_mathtext(), PdfPages(path, metadata={"Title": f"{t['one_page_title']} {report.period.label}"}) as pdf:
        fig = plt.figure(figsize=A4)
        _header(fig, report, lang)
        # Top down, each part under the one before, as tall as its rows: the page holds what it has.
        y = _block(fig, 0.9, 0.06, 0.88, lambda ax: _key_figures(ax, report, lang))
        y = _block(fig, y - GAP, 0.06, 0.88, lambda ax: indicator_table(ax, report, lang), title=9)
        line = textwrap.fill(enterprises_line(report, lang), 118)
        fig.text(0.06, y - GAP, line, fontsize=8, va="top")
        y -= GAP + (line.count("\n") + 1) * 8 * 1.3 / 72 / A4[1]
        kinds = customer_table(report, "customer_kinds", lang)
        index = [kinds.columns.index(c) for c in KIND_COLUMNS]
        low = _block(fig, y - GAP, 0.05, 0.52, lambda ax: table(
            ax, KIND_COLUMNS, [[r[i] for i in index] for r in kinds.rows], lang, t["customer_kinds"], size=6.5,
            max_chars=60, pad=0.04),
            title=8.5)
        counties = [[row.get(c) for c in COUNTY_COLUMNS] for row in report.groupings["county"]]
        low = min(low, _block(fig, y - GAP, 0.6, 0.35, lambda ax: table(
            ax, COUNTY_COLUMNS, counties, lang, t["util_per_county"].split(" (")[0], size=6.5, pad=0.04), title=8.5))
        top = low - GAP - 2.5 * 9 / 72 / A4[1]  # the chart's title above it
        _county_chart(fig.add_axes([0.22, 0.1, 0.72, max(top - 0.1, 0.05)]), report, lang)
        from server.reports.cost_pdf import totals_line  # material and cost (cost_pdf.py)
        fig.text(0.06, 0.045, textwrap.fill(totals_line(report, lang), 130), fontsize=7.5, va="center")
        notes = t["notes_count"].format(n=len(report.notes), file=full_report or "—")
        fig.text(0.06, 0.02, notes if report.notes else f"{t['notes']}: {t['none']}", fontsize=7.5)
        pdf.savefig(fig)
    plt.close("all")
    return Path(path)


GAP = 0.012  # between the parts of the page (figure fraction)


def _block(fig, top: float, left: float, width: float, draw, title: float = 0.0) -> float:
    """``draw(ax)`` a table hanging from ``top`` (its title, of size ``title`` pt, above it); the
    figure fraction where it ends."""
    title_h = (title + 8) / 72 / A4[1] if title else 0.0
    ax = fig.add_axes([left, top - title_h - 0.3, width, 0.3])
    return top - title_h - draw(ax)


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


def _key_figures(ax, report: Report, lang: str) -> float:
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
    return table(ax, ("figure", "this", "previous", "change"), rows, lang, size=7, header=header,
                 numeric=[False, True, True, True], max_chars=70)


def _change(value, key: str, lang: str) -> str:
    if value is None:
        return ""
    if key in key_figures.RATIOS:
        return localise(f"{round(value * 100, 1) + 0.0:+.1f} ", lang) + TEXT[lang]["pp"]
    text = f"{value:+,}" if isinstance(value, int) else f"{round(value, 2) + 0.0:+,.2f}"
    return localise(text, lang)


INDICATOR_COLUMNS = ("code", "indicator", "period_count", "cumulative", "target", "share_reached")


def indicator_table(ax, report: Report, lang: str) -> float:
    """The indicators' counts (no enterprise named), the codes of both programme periods in one cell."""
    t = indicator_labels.TEXT[lang]
    found = report.indicators
    title = t["indicators"]
    if found is not None and found.has_project:
        since = t["indicators_since"].format(start=found.project_start)
        title = f"{title}{' — ' + found.project_name if found.project_name else ''} ({since})"
    elif found is not None:
        title = f"{title} ({t['no_project']})"
    rows = [["" if r["key"].startswith("RCO01_") else f"{r['code']} / {r['code_2014']}",
             r["indicator"], r["period_count"], r["cumulative"], _or_dash(r["target"]), _or_dash(r["share_reached"])]
            for r in indicator_rows(report, lang)]
    cols = COLUMNS[lang]
    header = [f"{cols['code']} / {cols['code_2014'].split()[-1]}", cols["indicator"],
              f"{cols['period_count']} ({report.period.label})", cols["cumulative"], cols["target"],
              cols["share_reached"]]
    return table(ax, INDICATOR_COLUMNS, rows, lang, title, size=7, header=header,
                 numeric=[False, False, True, True, True, True], max_chars=80)


def _or_dash(value):
    return "–" if value is None else value


def enterprises_line(report: Report, lang: str) -> str:
    """The enterprises served in words, each count with its noun in the right number."""
    t = indicator_labels.TEXT[lang]
    row = (report.customer_tables.get("enterprises") or [{}])[0]
    sizes = [indicator_labels.count(row.get(f"enterprises_{size}") or 0, size, lang)
             for size in ("micro", "small", "medium", "large")]
    unsized = (row.get("enterprises_sme") or 0) - sum(row.get(f"enterprises_{s}") or 0 for s in ("micro", "small", "medium"))
    if unsized:
        sizes.insert(3, indicator_labels.count(unsized, "small_medium", lang))
    args = {"served": indicator_labels.count(row.get("enterprises_served") or 0, "enterprise", lang),
            "sizes": indicator_labels.listing(sizes, lang), "new": TEXT[lang]["na"] if row.get("enterprises_new") is None
            else localise(f"{row['enterprises_new']:,}", lang)}
    if report.previous is None or row.get("enterprises_not_in_previous") is None:
        return t["enterprises_line_first"].format(**args)
    return t["enterprises_line"].format(not_previous=row["enterprises_not_in_previous"],
                                        previous=report.previous.period.label, **args)


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
    ax.set_yticks(list(ys), wrap_names(counties), fontsize=7)
    ax.invert_yaxis()
    percent_axis(ax.xaxis, lang)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(t["util_per_county"], fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
