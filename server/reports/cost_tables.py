"""The material, cost and outcome sheets (docs/materials.md "Sheets"), as plain tables for the XLSX
and CSV writers, and their totals for the PDFs. A private person is never shown one by one: on
the job sheet as "private person", per customer as one line with their count. No file name and
no user appear here, whichever report it is."""

from __future__ import annotations

from common.text import plain_or_none

from server.reports import cost_labels, customer_rows
from server.reports.build import LocalTimes, Report
from server.reports.cost import CostView, JobCost
from server.reports.labels import COLUMNS, KINDS, OUTCOMES, SHEETS, TEXT

BILLING_COLUMNS = ("job_started", "job_ended", "outcome", "site", "printer", "organisation", "customer_name", "kind",
                   "material", "grams", "metres", "source", "job_hours", "machine_cost", "material_cost", "start_fee",
                   "cost", "cause")
SUM_COLUMNS = ("jobs_ended", "job_hours", "grams", "metres", "machine_cost", "material_cost", "start_fee", "cost")
CUSTOMER_COLUMNS = ("customer_name", "kind", *SUM_COLUMNS)
ORGANISATION_COLUMNS = ("organisation", *SUM_COLUMNS)
MATERIAL_COLUMNS = ("material", "jobs_ended", "grams", "metres", "grams_wasted", "material_cost")
OUTCOME_COLUMNS = ("group", "name", "jobs_ended", "jobs_done", "jobs_failed", "jobs_cancelled", "success_rate",
                   "grams_wasted")
CAUSE_COLUMNS = ("cause", "jobs_ended", "grams_wasted")
MONEY = frozenset({"machine_cost", "material_cost", "start_fee", "cost"})
KEYS = ("billing", "cost_customers", "cost_organisations", "materials", "outcomes", "failure_causes")


def tables(report: Report, lang: str) -> list:
    from server.reports.tables import Table
    view = report.cost
    made = {"billing": (BILLING_COLUMNS, billing_rows(report, lang)),
            "cost_customers": (CUSTOMER_COLUMNS, customer_sums(report, lang)),
            "cost_organisations": (ORGANISATION_COLUMNS, organisation_sums(view)),
            "materials": (MATERIAL_COLUMNS, material_rows(view, lang)),
            "outcomes": (OUTCOME_COLUMNS, outcome_rows(report, lang)),
            "failure_causes": (CAUSE_COLUMNS, cause_rows(view, lang))}
    out = []
    for key in KEYS:
        columns, rows = made[key]
        header = [COLUMNS[lang][c] + (f" ({view.currency})" if c in MONEY else "") for c in columns]
        out.append(Table(key, SHEETS[lang][key], columns, header, [[r.get(c) for c in columns] for r in rows]))
    return out


def customer_label(report: Report, customer: str | None, lang: str) -> str:
    if customer is None:
        return TEXT[lang]["unattributed"]
    c = report.cost.customers.get(customer)
    if c is None:
        return customer
    if c.kind == customer_rows.PRIVATE:
        return cost_labels.TEXT[lang]["private_person"]
    return c.name or customer


def billing_rows(report: Report, lang: str) -> list[dict]:
    local, outcomes = LocalTimes(report.period), OUTCOMES[lang]
    sources, causes = cost_labels.SOURCES[lang], cost_labels.CAUSES[lang]
    return [{"job_started": local(j.started), "job_ended": local(j.ended), "outcome": outcomes[j.outcome],
             "site": j.site, "printer": j.printer, "organisation": j.organisation,
             "customer_name": customer_label(report, j.customer, lang), "kind": KINDS[lang][j.kind],
             "material": plain_or_none(j.material) or None, "grams": j.grams, "metres": j.metres,
             "source": sources[j.source] or None, "job_hours": j.hours, "machine_cost": j.machine_cost,
             "material_cost": j.material_cost, "start_fee": j.start_fee, "cost": j.cost,
             "cause": causes[j.cause] if j.cause else None} for j in report.cost.jobs]


def _sum(jobs: list[JobCost]) -> dict:
    def total(values):
        known = [v for v in values if v is not None]
        return sum(known) if known else None
    return {"jobs_ended": len(jobs), "job_hours": total(j.hours for j in jobs), "grams": total(j.grams for j in jobs),
            "metres": total(j.metres for j in jobs), "machine_cost": sum(j.machine_cost for j in jobs),
            "material_cost": sum(j.material_cost for j in jobs), "start_fee": sum(j.start_fee for j in jobs),
            "cost": sum(j.cost for j in jobs)}


def _by(jobs: list[JobCost], key) -> dict:
    out: dict = {}
    for j in jobs:
        out.setdefault(key(j), []).append(j)
    return out


def customer_sums(report: Report, lang: str) -> list[dict]:
    """Per customer (private persons one line, with their count), the unattributed last."""
    customers = report.cost.customers

    def key(j: JobCost):
        if j.customer is None:
            return customer_rows.UNATTRIBUTED
        return customer_rows.PRIVATE if customers[j.customer].kind == customer_rows.PRIVATE else j.customer
    groups = _by(report.cost.jobs, key)
    rows = []
    for k in sorted((k for k in groups if k not in (customer_rows.UNATTRIBUTED, customer_rows.PRIVATE)),
                    key=lambda c: (customers[c].name or c).lower()):
        rows.append({"customer_name": customer_label(report, k, lang), "kind": KINDS[lang][groups[k][0].kind],
                     **_sum(groups[k])})
    if customer_rows.PRIVATE in groups:
        people = {j.customer for j in groups[customer_rows.PRIVATE]}
        rows.append({"customer_name": TEXT[lang]["private_persons"].format(n=len(people)),
                     "kind": KINDS[lang]["private"], **_sum(groups[customer_rows.PRIVATE])})
    if customer_rows.UNATTRIBUTED in groups:
        rows.append({"customer_name": TEXT[lang]["unattributed"], "kind": KINDS[lang]["unattributed"],
                     **_sum(groups[customer_rows.UNATTRIBUTED])})
    return rows


def organisation_sums(view: CostView) -> list[dict]:
    groups = _by(view.jobs, lambda j: j.organisation)
    return [{"organisation": org, **_sum(groups[org])} for org in sorted(groups, key=str.lower)]


def wasted(j: JobCost) -> float | None:
    return j.grams if j.outcome != "done" else None


def material_rows(view: CostView, lang: str) -> list[dict]:
    per: dict[str, dict] = {}
    for j in view.jobs:
        seen = set()
        for t in j.tools:
            name = t.material or cost_labels.GROUPS[lang]["unknown_material"]
            row = per.setdefault(name, {"material": name, "jobs_ended": 0, "grams": None, "metres": None,
                                        "grams_wasted": None, "material_cost": 0.0})
            row["jobs_ended"] += name not in seen
            seen.add(name)
            _add(row, "grams", t.grams)
            _add(row, "metres", None if t.mm is None else t.mm / 1000)
            if j.outcome != "done":
                _add(row, "grams_wasted", t.grams)
    _material_costs(view, per, lang)
    return [per[k] for k in sorted(per, key=str.lower)]


def _material_costs(view: CostView, per: dict, lang: str) -> None:
    # A job's material cost is split over its tools by their grams (one price per material).
    for j in view.jobs:
        grams = j.grams
        for t in j.tools:
            if t.grams and grams:
                name = t.material or cost_labels.GROUPS[lang]["unknown_material"]
                per[name]["material_cost"] += j.material_cost * t.grams / grams


def _add(row: dict, key: str, value: float | None) -> None:
    if value is not None:
        row[key] = (row[key] or 0.0) + value


def _outcome(group: str, name: str, jobs: list[JobCost]) -> dict:
    n = {k: sum(1 for j in jobs if j.outcome == k) for k in ("done", "failed", "cancelled")}
    waste = [wasted(j) for j in jobs if wasted(j) is not None]
    return {"group": group, "name": name, "jobs_ended": len(jobs), "jobs_done": n["done"], "jobs_failed": n["failed"],
            "jobs_cancelled": n["cancelled"], "success_rate": n["done"] / len(jobs) if jobs else None,
            "grams_wasted": sum(waste) if waste else None}


def outcome_rows(report: Report, lang: str) -> list[dict]:
    """Success rate and waste: all jobs, then per printer, per material, per customer kind."""
    jobs, g = report.cost.jobs, cost_labels.GROUPS[lang]
    rows = [_outcome(cost_labels.TEXT[lang]["all"], TEXT[lang]["network_all"], jobs)] if jobs else []
    printers = _by(jobs, lambda j: f"{j.site}/{j.printer}")
    rows += [_outcome(g["printer"], k, printers[k]) for k in sorted(printers)]
    materials: dict[str, list] = {}
    for j in jobs:
        for name in dict.fromkeys(t.material or g["unknown_material"] for t in j.tools) or [g["unknown_material"]]:
            materials.setdefault(name, []).append(j)
    rows += [_outcome(g["material"], k, materials[k]) for k in sorted(materials, key=str.lower)]
    kinds = _by(jobs, lambda j: j.kind)
    rows += [_outcome(g["kind"], KINDS[lang][k], kinds[k]) for k in KINDS[lang] if k in kinds]
    return rows


def cause_rows(view: CostView, lang: str) -> list[dict]:
    groups = _by([j for j in view.jobs if j.cause], lambda j: j.cause)
    rows = []
    for cause in sorted(groups, key=lambda c: -len(groups[c])):
        waste = [wasted(j) for j in groups[cause] if wasted(j) is not None]
        rows.append({"cause": cost_labels.CAUSES[lang][cause], "jobs_ended": len(groups[cause]),
                     "grams_wasted": sum(waste) if waste else None})
    return rows


def totals(view: CostView) -> dict:
    """The period's totals: for the PDF's page and the funder summary."""
    total = _sum(view.jobs)
    waste = [wasted(j) for j in view.jobs if wasted(j) is not None]
    done = sum(1 for j in view.jobs if j.outcome == "done")
    return {**total, "grams_wasted": sum(waste) if waste else 0.0,
            "success_rate": done / len(view.jobs) if view.jobs else None}
