"""The full PDF's page on material, cost and outcomes, and the funder summary's totals line
(figures from cost_tables, formatted as the rest of the PDF)."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt

from server.reports import cost_labels, cost_tables
from server.reports.build import Report
from server.reports.labels import COLUMNS, SHEETS
from server.reports.pdf import A4, fmt, table

ORG_COLUMNS = ("organisation", "jobs_ended", "job_hours", "grams", "metres", "cost")
CUSTOMER_COLUMNS = ("customer_name", "jobs_ended", "job_hours", "grams", "metres", "cost")
OUTCOME_COLUMNS = ("group", "name", "jobs_ended", "share_success", "grams_wasted")  # share_: a percentage
TOP = 15


def totals_line(report: Report, lang: str) -> str:
    found = cost_tables.totals(report.cost)
    return cost_labels.TEXT[lang]["totals"].format(
        jobs=fmt(found["jobs_ended"], "jobs_ended", lang), grams=fmt(found["grams"] or 0.0, "grams", lang),
        wasted=fmt(found["grams_wasted"], "grams", lang), hours=fmt(found["job_hours"] or 0.0, "job_hours", lang),
        cost=fmt(found["cost"], "cost", lang), currency=report.cost.currency,
        rate=fmt(found["success_rate"], "share_success", lang))


def page(report: Report, lang: str):
    fig = plt.figure(figsize=A4)
    fig.suptitle(f"{cost_labels.TEXT[lang]['cost_page']} — {report.period.label}", fontsize=13, weight="bold", y=0.975)
    fig.text(0.05, 0.945, textwrap.fill(totals_line(report, lang), 125), fontsize=8, va="top")
    header = lambda columns: [COLUMNS[lang][c] + (f" ({report.cost.currency})" if c in cost_tables.MONEY else "")
                              for c in columns]
    orgs = cost_tables.organisation_sums(report.cost)
    table(fig.add_axes([0.05, 0.68, 0.9, 0.2]), ORG_COLUMNS, [[r[c] for c in ORG_COLUMNS] for r in orgs], lang,
          SHEETS[lang]["cost_organisations"], size=7, header=header(ORG_COLUMNS))
    customers = cost_tables.customer_sums(report, lang)
    ranked = sorted(customers, key=lambda r: -r["cost"])[:TOP]
    table(fig.add_axes([0.05, 0.36, 0.9, 0.3]), CUSTOMER_COLUMNS, [[r[c] for c in CUSTOMER_COLUMNS] for r in ranked],
          lang, SHEETS[lang]["cost_customers"], size=7, header=header(CUSTOMER_COLUMNS))
    outcomes = [r for r in cost_tables.outcome_rows(report, lang)
                if r["group"] != cost_labels.GROUPS[lang]["printer"]][:14]
    rows = [[r["group"], r["name"], r["jobs_ended"], r["success_rate"], r["grams_wasted"]] for r in outcomes]
    table(fig.add_axes([0.05, 0.03, 0.47, 0.29]), OUTCOME_COLUMNS, rows, lang, SHEETS[lang]["outcomes"], size=6.5,
          header=[COLUMNS[lang][c] for c in OUTCOME_COLUMNS[:3]] + [COLUMNS[lang]["success_rate"],
                                                                     COLUMNS[lang]["grams_wasted"]])
    causes = cost_tables.cause_rows(report.cost, lang)[:14]
    table(fig.add_axes([0.55, 0.03, 0.42, 0.29]), cost_tables.CAUSE_COLUMNS,
          [[r[c] for c in cost_tables.CAUSE_COLUMNS] for r in causes], lang, SHEETS[lang]["failure_causes"], size=6.5,
          max_chars=36)
    return fig


__all__ = ["page", "totals_line"]
